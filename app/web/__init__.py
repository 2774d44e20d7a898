"""Server-rendered pages: one blueprint per area (`app/web/<area>.py`, each exporting `bp`)."""
