"""What StoryBot says, shared by the terminal and Discord so both speak alike."""

UNKNOWN = "The article doesn't say that, as far as I can tell."
UNKNOWN_HINT = "Try rephrasing, ask about who, what, when, where or why, or ask a curator to add it."
SUGGEST = "I'm not sure what you mean. Did you mean:"
EMPTY = "Ask me a question about the story, e.g. “How far did they push the trolley?”"
SOURCE_LABEL = "From the article"
