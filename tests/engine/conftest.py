import pytest


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(BigGAN folder, SD pipeline folder): untrained tiny models in the real on-disk formats."""
    pytest.importorskip("torch")
    from render_helpers import tiny_models

    return tiny_models(tmp_path_factory.mktemp("models"))
