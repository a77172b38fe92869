"""Starting, watching and stopping jobs: the wrapper, the tmux and process executors."""
