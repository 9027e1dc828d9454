"""Files: file results served with their content type, and signed, expiring download links."""
