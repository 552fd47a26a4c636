"""The dashboard's inline SVG chart."""

from __future__ import annotations

from daimm.web.chart import step_chart


def test_step_chart__draws_one_polyline_per_series_with_a_legend():
    svg = step_chart(
        [("AIMT", [(1_700_000_000, 1.0), (1_700_003_600, 3.5)]), ("ETH", [(1_700_001_000, 0.2)])],
        title="Revenue",
        y_label="units",
    )

    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 2
    assert ">AIMT<" in svg and ">ETH<" in svg
    assert "2023-11-14" in svg


def test_step_chart__no_points__says_nothing_yet():
    svg = step_chart([("rentals", [])], title="Rentals", y_label="rentals")

    assert "nothing yet" in svg
    assert "<polyline" not in svg


def test_step_chart__escapes_names():
    svg = step_chart([("<b>", [(1, 1.0)])], title="a & b", y_label="y")

    assert "&lt;b&gt;" in svg and "a &amp; b" in svg
