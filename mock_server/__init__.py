"""ipmock's mock server: the ImagePipeline SDXL text-to-image API, simulated.

from mock_server import Settings, create_app
app = create_app(Settings(strict=True))   # an ASGI app; drive it with httpx.ASGITransport
"""

from mock_server.app import create_app
from mock_server.clock import Clock
from mock_server.config import ConfigError
from mock_server.jobs import Job
from mock_server.scenarios import Refusal, Scenario, ScenarioBook
from mock_server.settings import Secret, Settings
from mock_server.stores import JobStore, MemoryStore, StoreUnavailable
from mock_server.validation import FieldError, GenerationRequest, InvalidRequest, validate

__all__ = [
    "Clock",
    "ConfigError",
    "FieldError",
    "GenerationRequest",
    "InvalidRequest",
    "Job",
    "JobStore",
    "MemoryStore",
    "Refusal",
    "Scenario",
    "ScenarioBook",
    "Secret",
    "Settings",
    "StoreUnavailable",
    "create_app",
    "validate",
]
