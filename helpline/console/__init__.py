"""The advocate console: pages served by the bot itself (aiohttp), with accounts, a TOTP
second factor, sessions, CSRF protection, lockout and an audit log. The queue and the case
view come later, through the features' interface."""
