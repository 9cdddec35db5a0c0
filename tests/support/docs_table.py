"""Values copied by hand from the public docs page, shared by the tests that check them.

Written out rather than read from schema/, so that the tests catch a schema that drifts
from the docs.
"""

SUBMIT = "/sdxl/text2image/v1"
PROMPT = "cinematic still woman holding mango juice"
ADAPTERS = [
    "ip-adapter_sdxl",
    "ip-adapter_sdxl_vit-h",
    "ip-adapter-plus_sdxl_vit-h",
    "ip-adapter-plus-face_sdxl_vit-h",
]
IMAGE = "https://example.com/face.jpg"
STYLE = "https://example.com/style.jpg"
