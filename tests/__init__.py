"""daimm tests: a package, so `tests.utils` wins over a `tests` package in site-packages."""
