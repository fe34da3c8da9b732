"""The `weights` analysis' result as its report section, and the warnings it raises."""

from __future__ import annotations

from effcap.capacity.analyses.weights import WELL_TRAINED_ALPHA, LayerSpectrum, WeightsResult
from effcap.capacity.measures.weight_spectra import MIN_TAIL_EIGENVALUES
from effcap.protos.v1 import report_pb2


def weights_to_proto(result: WeightsResult) -> report_pb2.WeightsReport:
    low, high = WELL_TRAINED_ALPHA
    fitted = result.fitted
    message = report_pb2.WeightsReport(
        layers=[_layer_to_proto(layer) for layer in result.layers],
        layers_fitted=len(fitted),
        layers_alpha_outside_range=sum(not low <= layer.spectrum.fit.alpha <= high for layer in fitted),
    )
    if result.mean_alpha is not None:
        message.mean_alpha = result.mean_alpha
    return message


def _layer_to_proto(layer: LayerSpectrum) -> report_pb2.LayerSpectrum:
    s = layer.spectrum
    message = report_pb2.LayerSpectrum(
        name=layer.name,
        kind=layer.kind,
        rows=layer.matrix_shape[0],
        columns=layer.matrix_shape[1],
        matrices=layer.matrices,
        eigenvalues=s.eigenvalues,
        spectral_norm=s.spectral_norm,
        frobenius_norm=s.frobenius_norm,
        stable_rank=s.stable_rank,
        esd_bin_edges=s.bin_edges,
        esd_counts=s.counts,
    )
    if s.fit is not None:
        message.alpha, message.xmin, message.ks_distance = s.fit.alpha, s.fit.xmin, s.fit.ks_distance
        message.tail_eigenvalues = s.fit.tail_eigenvalues
        message.alpha_weighted = layer.alpha_weighted
    return message


def warnings(report: report_pb2.WeightsReport) -> list[str]:
    """Layers too small for a fit, said once, so a missing α is not read as a failed analysis."""
    unfitted = [layer.name for layer in report.layers if not layer.HasField("alpha")]
    if not unfitted:
        return []
    return [
        f"weights: no power-law fit for {', '.join(unfitted)}: fewer than {MIN_TAIL_EIGENVALUES} positive eigenvalues "
        "(the layer's smaller dimension is too small for a tail)"
    ]
