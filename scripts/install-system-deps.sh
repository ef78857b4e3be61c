#!/usr/bin/env bash
# System packages a fresh Debian machine lacks: LibreOffice (DOC/WPS conversion and the compiled
# volume's PDF), a CJK font (charts, PDF), Chromium (browser test of digest.html), poppler (PDF pages).
# Idempotent and quiet; a missing package only disables the feature that needs it.
set -u
pkgs=(libreoffice-writer-nogui fonts-noto-cjk fonts-wqy-microhei chromium poppler-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present"
  exit 0
fi
if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null; then
  echo "not root: skipping system packages ${missing[*]}" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" != "0" ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || echo "warning: could not install some of: ${missing[*]}" >&2
echo "system packages: ${missing[*]} installed"
