"""Reference implementation: diffusers SDXL + IP-Adapter behind the same API (see issue 6)."""
