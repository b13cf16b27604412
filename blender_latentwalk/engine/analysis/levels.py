"""Band levels on band hops: the mean square of each band, the overall mean square and 12 chroma values.

They are products of the band power spectra (`spectra`) with a filter bank: a band's mean
square is the sum of its bins' power and the overall mean square the spectrum's total
(Parseval), chroma librosa's chroma bank. Bands on a part of the mix come from
`separation.Splitter`, bands on a stem from `stems`. The hop-level array has one row per
band hop and these columns: the bands (in the bands' order), the total, then chroma.
"""

import numpy as np

N_CHROMA = 12


def level_matrix(band_bins, chroma_bank):
    """One product per block: shape (n_bins, n_band_rows + 1 + 12), float32, C-contiguous.

    band_bins : shape (n_band_rows, n_bins), `filterbanks.band_bins` of the bands measured here
    chroma_bank : shape (12, n_bins), `filterbanks.chroma`
    """
    total = np.ones((1, band_bins.shape[1]), np.float32)
    return np.concatenate([band_bins, total, chroma_bank], axis=0).T.copy()


def total_column(n_bands):
    """The hop-level array's column of the overall mean square."""
    return n_bands


def chroma_columns(n_bands):
    """The hop-level array's 12 chroma columns, a list."""
    return list(range(n_bands + 1, n_bands + 1 + N_CHROMA))


def fill_blocks(hop_levels, blocks, columns):
    """Write blocks into ``hop_levels[:, columns]``, emptying ``blocks``.

    hop_levels : shape (n_hops, width); blocks : list of ``(first hop, values (m, len(columns)))``
    """
    while blocks:
        first_hop, values = blocks.pop(0)
        stop = min(first_hop + len(values), len(hop_levels))
        if stop > first_hop:
            hop_levels[first_hop:stop, columns] = values[: stop - first_hop]


def stack_blocks(blocks, width):
    """Concatenate ``(first hop, values (m, width))`` blocks, in order: shape (n_hops, width), float64."""
    if not blocks:
        return np.zeros((0, width))
    return np.concatenate([values for _, values in blocks]).astype(np.float64)
