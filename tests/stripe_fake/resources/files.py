"""File uploads: ``POST /v1/files`` (multipart, as the SDK sends it to the ``files`` base address),
``GET /v1/files/{file}``, ``GET /v1/files``; and ``fake.uploads`` to read what was uploaded.

Dispute evidence that is a document (``evidence[service_documentation]``,
``evidence[customer_communication]``, …) is the id of a file uploaded with purpose
``dispute_evidence``; Stripe takes PDF, JPEG and PNG files for it (the type is read from the
content, not the name).
"""

from __future__ import annotations

import copy

from ..errors import invalid_request, missing_param
from ..forms import Upload
from ..objects import from_fixture, new_id, now
from ..server import FakeRequest
from . import HELPERS, ROUTES
from .billing import expand_list_paths, expand_of
from .payments import payments_for

PURPOSES = (
    "account_requirement", "additional_verification", "business_icon", "business_logo", "customer_signature",
    "dispute_evidence", "document_provider_identity_document", "finance_report_run", "financial_account_statement",
    "identity_document", "identity_document_downloadable", "issuing_regulatory_reporting", "pci_document",
    "platform_terms_of_service", "selfie", "sigma_scheduled_query", "tax_document_user_upload",
    "terminal_android_apk", "terminal_reader_splashscreen",
)
MAX_BYTES = 16 * 1024 * 1024
DISPUTE_EVIDENCE_TYPES = ("pdf", "jpg", "png")


def file_type(data: bytes, filename: str) -> str:
    """What Stripe reports as ``type``: from the content's signature, else the name's extension."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {"jpeg": "jpg", "text": "txt"}.get(extension, extension or "txt")


def store_file(fake, owner: str | None, data: bytes, *, filename: str, purpose: str, title: str | None = None) -> dict:
    if purpose not in PURPOSES:
        raise invalid_request(f"Invalid purpose: must be one of {', '.join(PURPOSES)}", param="purpose")
    if not data:
        raise invalid_request("The file is empty.", param="file")
    if len(data) > MAX_BYTES:
        raise invalid_request("The file is larger than the 16 MB Stripe accepts.", param="file")
    kind = file_type(data, filename)
    if purpose == "dispute_evidence" and kind not in DISPUTE_EVIDENCE_TYPES:
        raise invalid_request(f"Dispute evidence must be a PDF, JPEG or PNG file; {filename!r} is {kind}.", param="file")
    file_id = new_id("file")
    created = now()
    obj = from_fixture(
        "file",
        id=file_id,
        created=created,
        expires_at=None if purpose == "dispute_evidence" else created + 365 * 86400,
        filename=filename,
        links={"object": "list", "data": [], "has_more": False, "url": f"/v1/file_links?file={file_id}"},
        purpose=purpose,
        size=len(data),
        title=title,
        type=kind,
        url=f"{fake.url if fake._server is not None else 'http://127.0.0.1'}/v1/files/{file_id}/contents",
    )
    fake.uploads._contents[(owner, file_id)] = data
    return fake.store.put(obj, owner)


@ROUTES.route("POST", "/v1/files")
def create_file(req: FakeRequest) -> dict:
    p = req.params
    if "file" not in p:
        raise missing_param("file")
    if not isinstance(p["file"], Upload):
        raise invalid_request("`file` must be a file sent as multipart/form-data.", param="file")
    if not p.get("purpose"):
        raise missing_param("purpose")
    link = p.get("file_link_data")
    if isinstance(link, dict) and link.get("create") == "true":
        raise invalid_request("The Stripe fake does not implement file links: add them under tests/stripe_fake/resources/.")
    upload: Upload = p["file"]
    obj = store_file(req.fake, req.stripe_account, upload.data, filename=upload.filename, purpose=p["purpose"])
    return payments_for(req).render(obj, expand_of(req))


@ROUTES.route("GET", "/v1/files/{file}")
def retrieve_file(req: FakeRequest) -> dict:
    pay = payments_for(req)
    return pay.render(pay.get("file", req.path_params["file"]), expand_of(req))


@ROUTES.route("GET", "/v1/files")
def list_files(req: FakeRequest) -> dict:
    p = req.params
    purpose = p.get("purpose")
    page = req.store.page("file", req.stripe_account, p, "/v1/files",
                          match=(lambda f: f["purpose"] == purpose) if purpose else None)
    pay, paths = payments_for(req), expand_list_paths(p)
    page["data"] = [pay.render(f, paths) for f in page["data"]]
    return page


class FileHelpers:
    """``fake.uploads``: files uploaded to the fake (platform unless ``account`` is given)."""

    def __init__(self, fake):
        self.fake = fake
        self._contents: dict[tuple[str | None, str], bytes] = {}

    def add(self, data: bytes, *, filename: str = "evidence.pdf", purpose: str = "dispute_evidence",
            account: str | None = None) -> dict:
        """A file as if uploaded (no request logged)."""
        with self.fake.lock:
            return copy.deepcopy(store_file(self.fake, account, data, filename=filename, purpose=purpose))

    def get(self, file_id: str, *, account: str | None = None) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self.fake.store.require("file", file_id, account))

    def contents(self, file_id: str, *, account: str | None = None) -> bytes:
        """The bytes uploaded."""
        with self.fake.lock:
            self.fake.store.require("file", file_id, account)
            return self._contents[(account, file_id)]

    def all(self, *, account: str | None = None) -> list[dict]:
        """Newest first."""
        with self.fake.lock:
            return copy.deepcopy(self.fake.store.newest_first("file", account))


HELPERS["uploads"] = FileHelpers
