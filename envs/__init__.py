"""DeepMind Control tasks from pixels as gymnasium environments, and a synthetic pixel task."""
