"""daimm test suite (a package so that `tests.utils` wins over a `tests` package in site-packages)."""
