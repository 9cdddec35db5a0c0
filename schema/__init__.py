"""The ipmock contract: language-neutral JSON Schema and OpenAPI files.

Installed as the package ``ipmock_schema`` so that code finds these files after a
plain ``pip install``; ``mock_server.contract`` is the loader.
"""
