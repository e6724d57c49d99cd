"""The methods that answer one request with a stream of pieces of a file, served over HTTP
as the file itself.

Connect's server streaming (enveloped messages) is not something a browser or curl can
save; a download is. So `POST /<service>/<Method>` of such a method takes its request as
a unary call does (canonical JSON or the binary form) and answers 200 with the file: the
bytes of each response's `field`, in order, as one body of `media_type`, to be saved as
`file_name` (`Content-Disposition: attachment`), never cached (`Cache-Control: no-store`:
these files hold personal data). `app.py` serves them, `openapi.py` documents them; every
method of the contract answered by a stream is one of `DOWNLOADS`.

Pure: names and words only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Download:
    """How a stream of responses is one file."""

    # The bytes field of the response that holds the next piece.
    field: str
    media_type: str
    file_name: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The answer's headers besides its content type."""
        return [
            (b"content-disposition", f'attachment; filename="{self.file_name}"'.encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ]


# By the method's HTTP path.
DOWNLOADS: Final[Mapping[str, Download]] = {
    "/purse.admin.v1.AdminService/ExportCustomers": Download(
        "csv", "text/csv; charset=utf-8", "customers.csv"
    ),
}
