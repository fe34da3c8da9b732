"""The HTML, Markdown and terminal reports show what the plots show, readably (issue 16, defects 10 and 11)."""

from __future__ import annotations

import re

from rich.console import Console

from effcap.clients.html_report import report_html
from effcap.clients.markdown_report import report_markdown
from effcap.clients.render import print_report
from effcap.protos.v1 import report_pb2

# 11px sans-serif averages well under 6 px per character; a legend must fit the picture at that width.
MIN_CHAR_PX = 6.0


def make_report() -> report_pb2.AuditReport:
    report = report_pb2.AuditReport()
    r = report.rademacher
    for radius, value in ((0.001, 1e-4), (0.01, 1e-3), (0.1, 1e-2)):
        point = r.local.add(relative_radius=radius)
        point.estimate.mean, point.estimate.ci_high = value, 2 * value
    r.global_estimate.mean = 0.9
    for name, spectral in (("hidden.0", 3.0), ("hidden.1", 2.0), ("head", 1.5)):
        r.layers.add(name=name, spectral=spectral, spectral_reshaped_kernel=spectral, frobenius=2 * spectral)
    c = report.compressibility
    c.eval_split, c.baseline_accuracy, c.tolerance, c.parameter_count = "test", 0.95, 0.01, 1000
    c.methods.add(method="magnitude_global", sparsity=0.9, compression_ratio=10.0)
    c.points.add(method="magnitude_global", level=0.9, accuracy=0.95, compression_ratio=10.0, code_bits=3200)
    for bits, accuracy in ((8, 0.95), (4, 0.945), (2, 0.5)):
        c.points.add(method="quantization", level=bits, accuracy=accuracy, compression_ratio=1.0, code_bits=bits * 1000)
    c.points.add(method="low_rank", level=0.99, accuracy=0.2, compression_ratio=2.0, code_bits=16000)
    m = report.memorization
    m.largest_fitted_size, m.capacity_bits, m.reached_max_size = 1024, 3401, True
    m.points.add(size=1024, fitted_fraction=1.0)
    return report


def figure(html: str, name: str) -> str:
    return re.search(rf'<figure data-plot="{name}">(.*?)</figure>', html).group(1)


def test_legends_fit_inside_their_charts():
    html = report_html(make_report())
    legends = 0
    for svg in re.findall(r"<svg .*?</svg>", html):
        width = float(re.search(r'width="([\d.]+)"', svg).group(1))
        for x, name in re.findall(r'<text[^>]* x="([\d.]+)" y="[\d.]+" font-size="11">([^<]*)</text>', svg):
            legends += 1
            assert float(x) + MIN_CHAR_PX * len(name) <= width, (name, x, width)
    assert legends >= 6 and "R̂ of the ball about the checkpoint" in figure(html, "rademacher-vs-radius")


def test_rademacher_radii_and_values_over_decades_are_spread_on_log_axes():
    svg = figure(report_html(make_report()), "rademacher-vs-radius")
    first = re.search(r'<path class="series" d="([^"]+)"', svg).group(1)
    ys = [float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", first)]
    assert abs((ys[0] - ys[1]) - (ys[1] - ys[2])) < 1.0 and ys[0] - ys[1] > 20  # one decade, one equal step


def test_layer_norms_are_labelled_by_layer_name():
    svg = figure(report_html(make_report()), "layer-norms")
    assert re.findall(r'<text class="x-tick"[^>]*>([^<]*)</text>', svg) == ["hidden.0", "hidden.1", "head"]


def test_compressibility_tables_list_quantisation_and_low_rank():
    report = make_report()
    html, markdown = report_html(report), report_markdown(report)
    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    for rendered in (html, markdown, text):
        assert "quantization" in rendered and "4 bits per weight" in rendered and "94.5%" in rendered
        assert "low_rank" in rendered and "none within tolerance" in rendered
    assert "8.0×" in markdown  # 32 bits x 1000 parameters / 4000 bits


def test_a_capacity_bound_reads_m_star_at_least_not_equals_at_least():
    report = make_report()
    console = Console(record=True, width=300)
    print_report(report, console)
    for rendered in (report_html(report), report_markdown(report), console.export_text()):
        assert "m* = ≥" not in rendered and "m* ≥ 1024" in rendered


def test_the_card_says_bounds_were_not_computed_when_no_analysis_that_computes_them_ran():
    from effcap.clients.card import card_lines

    report = report_pb2.AuditReport()  # a randomization-only audit: no rademacher, no compressibility section
    report.randomization.conditions.add(label="true")
    bounds = [line for line in card_lines(report) if "bound" in line.lower()]
    assert bounds == [
        "Generalisation bounds: not computed (the rademacher and compressibility analyses, which compute them, "
        "were not run)."
    ]
    assert "not computed" in report_markdown(report) and "not computed" in report_html(report)
    report.compressibility.eval_split = "test"  # compressibility ran, found no paid bound; rademacher did not run
    (line,) = [line for line in card_lines(report) if line.startswith("Generalisation bounds")]
    assert "none fully paid" in line and "the rademacher analysis, which computes most, was not run" in line
    report.rademacher.margin = 1.0  # both ran and no bound was paid for: that, and nothing about analyses not run
    (line,) = [line for line in card_lines(report) if line.startswith("Generalisation bounds")]
    assert "none fully paid" in line and "not run" not in line
