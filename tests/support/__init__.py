"""What the tests share: fakes of the outside world, request signers and sample files."""

from pathlib import Path

SUPPORT = Path(__file__).parent
REPO = SUPPORT.parents[1]
MAIL_SAMPLES = SUPPORT / "mail_samples"
TLS = SUPPORT / "tls"
