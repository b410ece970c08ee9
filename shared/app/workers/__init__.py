"""Worker processes: implementations run outside the command's process, grouped, contained; and child processes in any language."""
