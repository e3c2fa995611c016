"""Server-rendered pages. Views parse the request, call one service or selector, render.

Split by audience: `public` (everyone), `accounts`, `participant`, `host`, `leaderboard`.
"""
