"""Artists, releases, tracks, split sheets, pricing, audio inspection, storage and delivery."""
