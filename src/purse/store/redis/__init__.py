"""Redis: short-lived and disposable state only (I6). Losing it loses no money."""
