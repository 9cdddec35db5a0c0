"""ipmock's mock server: the ImagePipeline SDXL text-to-image API, simulated.

from mock_server import Settings, create_app
app = create_app(Settings(strict=True))   # an ASGI app; drive it with httpx.ASGITransport

What is exported here is the public face: the app and its settings, the clock tests
move, the generator seam a real model plugs into, the scenario and fault types a user
scripts, request validation, and the exception tree (``mock_server.exceptions``).
Everything else is the server's inside and may change.
"""

from mock_server.clock import Clock
from mock_server.config import ConfigError
from mock_server.errors import ApiError
from mock_server.exceptions import IpmockError
from mock_server.faults import ConnectionDropped, Fault, FaultMix
from mock_server.generators import GENERATE, Generator
from mock_server.http.app import create_app
from mock_server.images import RenderedImage
from mock_server.scenarios import Refusal, Scenario, UnknownScenario
from mock_server.settings import Secret, Settings
from mock_server.state import StoreUnavailable
from mock_server.validation import FieldError, GenerationRequest, InvalidRequest, validate

__all__ = [
    "GENERATE",
    "ApiError",
    "Clock",
    "ConfigError",
    "ConnectionDropped",
    "Fault",
    "FaultMix",
    "FieldError",
    "GenerationRequest",
    "Generator",
    "InvalidRequest",
    "IpmockError",
    "Refusal",
    "RenderedImage",
    "Scenario",
    "Secret",
    "Settings",
    "StoreUnavailable",
    "UnknownScenario",
    "create_app",
    "validate",
]
