"""The suite, one folder per source folder (tests/mock_server/http tests mock_server/http).

Every folder is a package, so that a test module is named by its whole path
(``tests.mock_server.test_flows``): two folders may hold modules of the same name, and
``tests/mock_server`` never shadows the real ``mock_server``.
"""
