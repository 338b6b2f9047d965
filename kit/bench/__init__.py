"""bench: providers behind one interface, IR metrics, and the model-selection report."""
