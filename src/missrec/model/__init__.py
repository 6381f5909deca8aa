"""Pure ``nn.Module`` models; no data loading or training code lives here."""
