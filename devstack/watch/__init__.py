"""File watchers: app code (reload gunicorn) and static files (prove every edit is served fresh)."""
