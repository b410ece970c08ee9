"""Plumbing every command shares: experiment files, writing results safely, the project folder, progress, memory."""
