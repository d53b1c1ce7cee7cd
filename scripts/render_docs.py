"""Render the README pictures of the consolidated workbook: sample run → PDF (LibreOffice) → PNG (poppler).

    .venv/bin/python scripts/render_docs.py

Needs `soffice`, `pdftotext` and `pdftoppm` on the PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"bao_cao_tinh.png": "TỈ TRỌNG (%)", "chi_tieu.png": "Tỉ lệ hoàn thành chỉ tiêu năm"}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="tonghop-docs-"))
    try:
        inbox = work / "inbox"
        shutil.copytree(ROOT / "inbox", inbox)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_inbox.py"), "--touch-only",
                        "--inbox", str(inbox)], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "pipeline", "run", "--inbox", str(inbox), "--outbox", str(work / "out"),
                        "--registry", str(ROOT / "templates" / "don_vi.xlsx")], check=True, cwd=ROOT)
        workbook = next((work / "out").glob("*/tong_hop.xlsx"))
        subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{work}/profile",
                        "--convert-to", "pdf", "--outdir", str(work), str(workbook)], check=True, capture_output=True)
        pdf = work / "tong_hop.pdf"
        pages = int(next(line.split()[-1] for line in subprocess.run(
            ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()
            if line.startswith("Pages:")))
        for picture, needle in PAGES.items():
            for page in range(1, pages + 1):
                text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                                      capture_output=True, text=True, check=True).stdout
                if needle in text:
                    stem = ROOT / "docs" / Path(picture).stem
                    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile",
                                    str(pdf), str(stem)], check=True)
                    print(f"{picture}: page {page}")
                    break
            else:
                print(f"{picture}: no page mentions {needle!r}", file=sys.stderr)
                return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
