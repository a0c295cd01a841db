"""What ``helpline doctor`` asks signal-cli-rest-api: reachable, in json-rpc mode, new enough,
and holding the bot's number. The number itself is never printed."""

from __future__ import annotations

import aiohttp

from helpline.channels.signal import SignalOptions, _new_enough
from helpline.findings import Finding, error, ok


async def check_signal(options: SignalOptions, timeout: float = 10.0) -> list[Finding]:
    base = f"http://{options.service}"
    limit = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=limit) as session:
            async with session.get(f"{base}/v1/health") as resp:
                if resp.status >= 300:
                    return [error("signal", f"the bridge at {options.service} is not healthy "
                                  f"(HTTP {resp.status}); see its log (docker compose logs "
                                  "signal-cli)")]
            async with session.get(f"{base}/v1/about") as resp:
                about = await resp.json(content_type=None)
            async with session.get(f"{base}/v1/accounts") as resp:
                accounts = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        return [error("signal", f"the bridge at {options.service} is not reachable "
                      f"({type(exc).__name__}); start signal-cli-rest-api (helpline run waits "
                      "for it)")]
    found: list[Finding] = []
    mode = about.get("mode") if isinstance(about, dict) else None
    version = str(about.get("version", "")) if isinstance(about, dict) else ""
    if mode != "json-rpc":
        found.append(error("signal", f"the bridge runs in {mode or 'an unknown'} mode; set "
                           "MODE=json-rpc in its environment and restart it"))
    elif not _new_enough(version):
        found.append(error("signal", f"the bridge is too old ({version}); use "
                           "signal-cli-rest-api 0.101 or newer"))
    else:
        found.append(ok("signal", f"bridge reachable, json-rpc mode, version {version}"))
    if not isinstance(accounts, list) or options.number not in accounts:
        found.append(error("signal number", "the bridge has no account for signal.number; "
                           "register or link it (README, Signal), or fix "
                           "HELPLINE_SIGNAL_NUMBER"))
    else:
        found.append(ok("signal number", "registered in the bridge"))
    return found
