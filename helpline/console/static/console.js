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
