"""`lpm-edge serve`: a bundle behind an HTTP JSON API, with dynamic micro-batching."""

from .app import Limits, create_app
from .batcher import Batching
from .server import ServeConfig, app_for_bundle, serve

__all__ = ["Batching", "Limits", "ServeConfig", "app_for_bundle", "create_app", "serve"]
