"""Running one step inside the conveyor context: parameters in, command, results out."""
