// The advocate console's only script (no inline scripts anywhere: the
// Content-Security-Policy allows scripts from this file alone).
"use strict";

// The set-up link carries its code after the # sign, which browsers never send to a
// server (so it stays out of proxy logs and Referer headers). Put it in the form, then
// take it out of the address bar and the history.
function fillSetupCode() {
  var field = document.getElementById("token-field");
  var input = document.getElementById("token");
  if (!field || !input) {
    return;
  }
  var code = window.location.hash.replace(/^#/, "");
  if (code) {
    input.value = code;
    window.history.replaceState(null, "", window.location.pathname);
  }
  if (input.value) {
    field.hidden = true;
  }
}

// After a refused form, move the keyboard focus to the message, so that a screen reader
// reads it and the next Tab goes on from there.
function focusError() {
  var error = document.querySelector(".error");
  if (error) {
    error.setAttribute("tabindex", "-1");
    error.focus();
  }
}

document.addEventListener("DOMContentLoaded", function () {
  fillSetupCode();
  focusError();
});

// ---- the live queue and case pages (server-sent events; no content in the queue's)

function live(url, handlers, opened) {
  var source = new EventSource(url);
  source.addEventListener("error", function () {
    // The stream will not come back (signed out, the case gone): the page is read
    // again, which shows the sign-in page rather than what this one still holds.
    if (source.readyState === EventSource.CLOSED) {
      window.location.reload();
    }
  });
  source.addEventListener("open", function () {
    // What changed between the page and the stream, or while it was reconnecting.
    if (opened) {
      opened();
    }
  });
  Object.keys(handlers).forEach(function (kind) {
    source.addEventListener(kind, function (event) {
      handlers[kind](JSON.parse(event.data || "{}"), source);
    });
  });
  return source;
}

function readPage(url) {
  // The page's HTML, or null (signed out or refused: the page is read again instead).
  return fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
    .then(function (response) {
      if (response.status === 403 || response.redirected) {
        window.location.reload();
        return null;
      }
      return response.ok ? response.text() : null;
    });
}

function refresh(element, url) {
  return readPage(url)
    .then(function (html) {
      if (html !== null) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var main = page.getElementById("main");
        element.replaceChildren.apply(element, Array.from((main || page.body).childNodes));
      }
    });
}

function liveQueue() {
  var queue = document.getElementById("queue");
  if (!queue) {
    return;
  }
  var said = document.getElementById("queue-said");
  var again = function () {
    refresh(queue, queue.dataset.part).then(function () {
      // One short line for a screen reader, rather than the whole queue read again.
      var counts = document.getElementById("counts");
      if (counts && said) {
        var text = "Waiting: " + counts.dataset.waiting + ". Claimed: " +
                   counts.dataset.claimed + ".";
        if (said.textContent !== text) {
          said.textContent = text;
        }
      }
    });
  };
  live(queue.dataset.events, {queue: again}, again);
  window.setInterval(again, 60000);  // the waits grow
}

function lineElement(line) {
  var item = document.createElement("li");
  item.className = "line " + line.kind;
  item.dataset.id = line.id;
  if (line.kind === "advocate" || line.kind === "note") {
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = line.kind === "note" ? "Note by " + line.author + " (never sent):"
                                           : line.author + ":";
    item.appendChild(who);
    item.appendChild(document.createTextNode(" "));
  }
  var text = document.createElement("span");
  text.className = "text";
  text.textContent = line.text;
  item.appendChild(text);
  if (line.kind === "advocate") {
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = line.state;
    item.appendChild(document.createTextNode(" "));
    item.appendChild(state);
  }
  return item;
}

function readTranscriptAgain(transcript) {
  // Another worker added a line or changed one (several workers serving together): the
  // page's transcript is read again, and nothing else on the page changes.
  return readPage(window.location.href)
    .then(function (html) {
      if (html === null) {
        return;
      }
      var page = new DOMParser().parseFromString(html, "text/html");
      var fresh = page.getElementById("transcript");
      if (!fresh) {
        return;
      }
      // Only what is new is added (a screen reader hears the new line, not the whole
      // transcript again); the lines already shown get their state.
      Array.from(fresh.querySelectorAll("li[data-id]")).forEach(function (line) {
        var shown = transcript.querySelector('[data-id="' + line.dataset.id + '"]');
        if (!shown) {
          transcript.appendChild(document.importNode(line, true));
          return;
        }
        var state = line.querySelector(".state");
        var shownState = shown.querySelector(".state");
        if (state && shownState && shownState.textContent !== state.textContent) {
          shownState.textContent = state.textContent;
        }
      });
      var empty = document.getElementById("empty");
      if (empty && !page.getElementById("empty")) {
        empty.remove();
      }
    });
}

function liveCase() {
  var box = document.getElementById("case");
  if (!box) {
    return;
  }
  var transcript = document.getElementById("transcript");
  var head = document.getElementById("case-head");
  live(box.dataset.events, {
    line: function (line) {
      var empty = document.getElementById("empty");
      if (empty) {
        empty.remove();
      }
      if (line.id && transcript.querySelector('[data-id="' + line.id + '"]')) {
        return;
      }
      transcript.appendChild(lineElement(line));
    },
    state: function (change) {
      var item = transcript.querySelector('[data-id="' + change.id + '"] .state');
      if (item) {
        item.textContent = change.state;
      }
    },
    changed: function () { readTranscriptAgain(transcript); },
    card: function () { refresh(head, box.dataset.head); },
    closed: function () { refresh(head, box.dataset.head); },
    cleared: function (data, source) {
      source.close();
      transcript.replaceChildren();
      document.getElementById("cleared").hidden = false;
      var tools = document.getElementById("tools");
      if (tools) {
        tools.remove();
      }
      refresh(head, box.dataset.head);
    },
    gone: function (data, source) {
      source.close();
      window.location.reload();
    }
  }, function () { refresh(head, box.dataset.head); });
  // The composer's forms go in the background, so that the page (and what is being
  // typed in the other box) stays; without the script they are ordinary forms.
  document.querySelectorAll("form.composer").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                          headers: {"X-Requested-With": "fetch"}})
        .then(function (response) {
          if (response.ok) {
            var box = form.querySelector("textarea");
            if (box) {
              box.value = "";
              box.focus();
            }
          } else {
            window.location.reload();
          }
        });
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  liveQueue();
  liveCase();
});
