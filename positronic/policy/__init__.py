"""What runs a model against a robot: the policy interface and the action form robots execute."""
