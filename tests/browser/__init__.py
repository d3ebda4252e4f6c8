"""A real headless Chromium for browser sign-in tests, driven over the Chrome DevTools Protocol."""
