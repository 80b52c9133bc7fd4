"""What every Stride process shares: settings, database models, contracts, pure domain rules."""
