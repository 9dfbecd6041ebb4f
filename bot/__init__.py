"""StoryBot: answers questions about one news story, quoting the sentence each answer rests on."""

__version__ = "0.1.0"
