#!/usr/bin/env bash
# Installs Tesseract OCR (Debian/Ubuntu packages tesseract-ocr and its English data) so that
# Mercato's verification workers read scanned documents instead of sending them to review.
# Optional: everything else works without it, and the test suite checks both cases.
#
#   scripts/install-ocr.sh
set -euo pipefail
if command -v tesseract >/dev/null 2>&1; then
    echo "tesseract is installed: $(tesseract --version 2>&1 | head -n 1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install Tesseract 4 or 5 with your package manager" >&2
    exit 1
fi
sudo_if_needed=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_if_needed=(sudo)
fi
"${sudo_if_needed[@]}" apt-get update -q
"${sudo_if_needed[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tesseract-ocr tesseract-ocr-eng
tesseract --version 2>&1 | head -n 1
