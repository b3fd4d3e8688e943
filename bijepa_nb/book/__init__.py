"""The book itself: the chapter runner, chapter cells, repository links, widgets."""
