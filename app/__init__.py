"""OfferTrack: quotations whose QR code opens a live tracking page."""
