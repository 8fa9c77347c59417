import os

# One intra-op thread for torch (and OpenMP/BLAS) in this process and in every subprocess a test
# starts: results then do not depend on the machine's core count, and tiny ops do not slow down
# 100× when another job loads the cores (OpenMP threads spin-waiting for a busy core).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
