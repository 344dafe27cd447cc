"""A small, valid PDF 1.4 written by hand: one page of Helvetica text lines (no dependency).

The file has the parts a reader needs: header, catalog, page tree, one page with its font and
content stream, a cross-reference table whose offsets are exact, trailer, ``startxref``, ``%%EOF``.
"""

from __future__ import annotations


def _escape(text: str) -> str:
    text = text.encode("latin-1", "replace").decode("latin-1")  # Helvetica's WinAnsi: no other glyphs
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace("\r", " ").replace("\n", " ")


def text_pdf(lines: list[str], *, title: str = "") -> bytes:
    """A one-page PDF (US Letter) showing ``lines`` top to bottom; ``title`` goes in the info dictionary."""
    ops = ["BT", "/F1 11 Tf", "14 TL", "56 740 Td"]
    for i, line in enumerate(lines):
        if i == 0:
            ops += ["/F1 16 Tf", f"({_escape(line)}) Tj", "/F1 11 Tf", "T*", "T*"]
        else:
            ops += [f"({_escape(line)}) Tj", "T*"]
    ops.append("ET")
    content = ("\n".join(ops) + "\n").encode("latin-1")

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        f"<< /Title ({_escape(title)}) /Producer (stripe-fake) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment marks the file as binary
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, len(objects))
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
