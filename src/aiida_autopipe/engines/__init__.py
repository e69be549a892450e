"""AiiDA set-up: profiles, the localhost Computer, Codes and pseudopotential families."""
