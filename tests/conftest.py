"""The suites' fixtures all come from one plugin, tests/fixtures/ (see its
docstring for the list); plugins may only be declared here, in the top conftest."""

pytest_plugins = ["tests.fixtures"]
