"""General English, in one place: what the lexical stage knows of how people write questions.

Function words, chat phrases and spellings, the words that type a question (who, how many, how
long, ...), the shapes an answer of each type has (a number, a duration, a place), and how a chat
message breaks into sentences and clauses. Nothing here is about any one story: a story's own
words, names and synonyms live in its knowledge folder (``knowledge/``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words that carry no topic: function words, question words (handled as types) and the
# chatter people wrap questions in. They are removed before weighting.
STOPWORDS = frozenset(
    """a an the and or but if so of to in on at by for from with about as into onto over
    is are was were be been being am do does did done have has had having
    i me my we us our you your he him his she her it its they them their this that these
    those there here what which who whom whose when where why how much many long far
    can could would should will shall may might must not no yes
    just really actually exactly please pls plz thanks thank thx ty hi hello hey hiya yo
    ok okay lol lmao haha hmm um uh btw quick question questions ask asking wondering
    wonder curious know tell explain say said mean bot storybot anyone someone guys also
    then again still even any some all get got like kind sort bit lot one something
    thing things stuff article story report cheers mate buddy dude pal bro wow cool nice
    great awesome crazy interesting brr oh ah well anyway heard read saw seen radio news
    one more other good morning sorry dumb q omg yikes rn wait lmk idk tbh ngl fr xd
    totally literally basically thats
    afaik alright anybody somebody bruh chat chatbot damn eh ehh er erm fam
    folks fwiw fyi gals gimme gonna wanna kinda sorta gosh greetings hehe hellooo heyyy hm huh
    honestly seriously sincerely genuinely iirc ikr imho imo jeez jk k kk lads mates lemme lolol
    nope yep yeah yea yall nvm np okey ooh peeps qq quickie query rofl sir madam sis smh soz
    sry stupid silly sup wassup whatsup tf wtf omfg tysm tyvm ugh uhh ummm welp whoa heck howdy
    appreciate appreciated aw aww awww ones guy though istg bestie besties lowkey highkey deadass homie
    up off way away
    dont doesnt didnt isnt wasnt arent werent cant couldnt wont wouldnt havent hasnt hadnt im ive youre theyre
    instead rather everyone everybody somewhere anywhere finally per fellow""".split()  # noqa: SIM905 - a word list reads best as text
)
# Chat phrases around a question, removed before it is read (single filler words are in
# STOPWORDS): written from how people chat, not from any question set.
FILLER = re.compile(
    r"\b(thanks?( you)? in advance|ty in advance|sorry (for|about) my (bad )?english|asking for a friend|"
    r"(a )?random question|real quick|question for (ya|you)|i'?m (so |really |a bit |kinda )?(confused|lost)|"
    r"i (do ?n'?t|dont) (get|understand) (it|this)|good (morning|afternoon|evening|night)|"
    r"if (that|this) makes sense|if you know|if anyone knows|just wondering|out of curiosity|"
    r"for (my|a) (school|class) (project|assignment)|in a nutshell|in simple terms|eli5|"
    r"(walk|talk|run) me through|fill me in( on)?|(a |an )?(genuine|honest|serious|dumb|stupid|silly) question|"
    r"to be honest|not gonna lie|no cap|for real( though| tho)?|for (my )?homework|"
    r"(my|our)( \w+){1,2} (asks?|asked|wants to know|wanted to know|was asking|is asking|was wondering)( me| us)?|"
    r"explain (it )?like (i'?m|he'?s|she'?s|they'?re|i am|he is|she is) \w+|i forgot( the name| it)?( already)?|"
    r"or nah|\w+ nerd here|for (those of us|some(one|body)|any(one|body)|people) (who|that) [^?.!,]{0,30}?\b(news|politics)\b|"
    r"(so )?(you'?re|are you) (telling|saying) (me|that)|"
    r"(according to|in|from) (the|this|that) (article|story|news|report)|the (article|story) says|"
    r"from what i (read|heard|saw)|(please |pls |plz )?help( me)?( out)?(?=\W)|"
    r"(every ?one|people|every ?body)('s| is| are)? (talking|going on) about|i keep (hearing|reading)( about| that)?|"
    r"i (just )?(heard|read|saw)( about| that| somewhere)?|(is|are) (trending|going around)( on \w+)?|"
    r"on earth|the (heck|hell)|in the world|at all|anyway|exactly|"
    r"what'?s up|wassup|sup|how'?s it going|wh?at'?s new)\b",
    re.IGNORECASE,
)
# Emoticons end a sentence ("this is wild :( how far did they push it"), and ":D" is no name.
EMOTICON = re.compile(r"(?<!\w)(?:[:;=8][-'^]?[()\[\]dDpPoO/\\|3*]+|[xX][dD]+|<3+|\^_?\^|-_-|T_T)(?!\w)")
# Chat spellings people type; mapped before anything else.
SLANG = {
    "ppl": "people", "hw": "how", "u": "you", "ur": "your", "r": "are", "wat": "what", "wot": "what",
    "abt": "about", "cuz": "because", "bc": "because", "coz": "because", "y": "why",
    "n": "and", "tho": "though", "thru": "through", "bout": "about", "wen": "when",
    "whr": "where", "km": "kilometre", "kms": "kilometre", "hrs": "hours", "hr": "hour",
    "mins": "minutes", "govt": "government", "teh": "the", "hte": "the",
    "whats": "what is", "wheres": "where is", "whos": "who is", "hows": "how is", "whens": "when is",
    "whys": "why is", "whered": "where did", "whyd": "why did", "howd": "how did", "whatd": "what did",
}  # fmt: skip
# Questions about the bot itself, not the story.
ABOUT_BOT = re.compile(
    r"\b(your|yourself|you'?re|are you|r u|who (made|built|created|programmed) you|"
    r"do you (like|think|feel|believe|have (feelings|emotions|a name|friends)))\b"
)

WH_TYPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), qtype)
    for pattern, qtype in (
        (
            r"\bhow long\b|\bduration\b|\bhow (many|much) (time|hours|days|minutes|weeks|months|years)\b",
            "how-long",
        ),
        (
            r"\bhow far\b|\bdistance\b|\bhow many (km|kilometres?|kilometers?|miles?|metres?|meters?)\b",
            "how-far",
        ),
        (
            r"\bhow (many|much)\b|\bnumber of\b|\bage\b"
            r"|\bhow (old|cold|hot|warm|big|large|small|tall|heavy|fast|slow|wide|deep|high|heavy)\b",
            "how-many",
        ),
        (
            r"\bwhy\b|\breason\b|\bhow come\b|\bcause\b|\bwhat (made|prompted|forced|caused|motivated|drove|is driving)\b",
            "why",
        ),
        (r"\bwho(m|se)?\b", "who"),
        (
            r"\bwhen\b|\bwhat (time|day|year|date|century|month)\b|\bwhich (day|year|century|month)\b|\bdate\b",
            "when",
        ),
        (r"\bwhere\b|\bwhich (city|country|river|place)\b", "where"),
    )
)

# What an answer must contain to answer a question of that type: a "how many" question
# is not answered by an entry that gives no number, however many words they share.
NUMBER = (
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|dozen|half|several|few)\b"
)
HAS_NUMBER = re.compile(NUMBER)
HAS_DURATION = re.compile(
    r"\b(hours?|minutes?|days?|weeks?|months?|years?|decades?|centur(y|ies)|since|until|overnight)\b"
)
HAS_DISTANCE = re.compile(NUMBER + r"|\b(miles?|kilometres?|kilometers?|km|metres?|meters?)\b")
HAS_TIME = re.compile(
    r"\d|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|"
    r"april|may|june|july|august|september|october|november|december|morning|afternoon|"
    r"evening|night|today|yesterday|week|month|year|years|century|ago|since|before|after)\b"
)
HAS_PLACE = re.compile(r"(?<=\w)\W+[A-Z][a-z]")  # a capitalised word past the first: a name
HAS_PLACE_WORD = re.compile(
    r"\b(border|bridge|river|airport|city|town|country|capital|station|embassy|home|abroad|there|here)\b"
)


def names_a_place(answer: str) -> bool:
    return HAS_PLACE.search(answer) is not None or HAS_PLACE_WORD.search(answer.casefold()) is not None


def shape(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda answer: pattern.search(answer.casefold()) is not None


ANSWER_SHAPES: dict[str, Callable[[str], bool]] = {
    "how-many": shape(HAS_NUMBER),
    "how-long": shape(HAS_DURATION),
    "how-far": shape(HAS_DISTANCE),
    "when": shape(HAS_TIME),
    "where": names_a_place,
}
"""Whether an answer has what a question type needs: a number for "how many", a time unit
for "how long", a distance, a time, a place."""

COUNTING = frozenset({("how", "many"), ("how", "much"), ("number", "of")})
AGEING = frozenset({("how", "old")})
LASTING = frozenset({("how", "long")})
# "What month/year/time ...": the answer must give that, not just any time ("on a Thursday").
WHEN_ASKED = re.compile(r"\b(what|which) (month|year|time|date)\b")
MONTHS = r"january|february|march|april|may|june|july|august|september|october|november|december"
WHEN_GIVEN = {
    "month": re.compile(rf"\b({MONTHS})\b"),
    "year": re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\bcentury\b"),
    "time": re.compile(r"\d:\d\d|\b\d+ ?(am|pm)\b|\b(morning|afternoon|evening|night|midnight|noon|dawn)\b"),
    "date": re.compile(rf"\b\d{{1,2}}(st|nd|rd|th)?( of)? ({MONTHS})\b|\b({MONTHS}) \d{{1,2}}\b|\d/\d"),
}
TIME_UNITS = frozenset(
    ["minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years"]
)
DURATION_REACH = 4  # words between a duration and what it is the duration of, in an answer
OWNER = re.compile(r"\b(\w+)'s\b")  # "the captain's daughter"
COUNTS_OR_AGES = re.compile(r"\b(how many|how much|number of|how old|how long)\b")
CONTRACTIONS = frozenset(
    ["it's", "that's", "what's", "who's", "where's", "when's", "how's", "there's", "he's", "she's", "let's"]
)
WH_TYPE_NAMES = frozenset(["how-long", "how-far", "how-many", "why", "who", "when", "where"])
WH_WORDS = frozenset(["who", "whom", "whose", "what", "when", "where", "why", "how", "which"])
# Words that follow a wh-word that asks ("when did", "where to"), not one that joins a clause.
ASKING_VERBS = frozenset(
    [
        "did",
        "do",
        "does",
        "was",
        "were",
        "is",
        "are",
        "will",
        "would",
        "could",
        "can",
        "had",
        "has",
        "have",
        "to",
        "exactly",
    ]
)
# Where one sentence of a chat message ends and another begins: sentence punctuation, an
# emoticon or emoji, or a comma before a question word ("ok i'm confused, where did they go").
BREAK = (
    r"[.!?;]+\s+|\s+[-–—]+\s+"  # emoticons are full stops by now (EMOTICON)
    r"|\s*[\u2600-\u27bf\U0001f000-\U0001faff\ufe0f]+\s*"
    r"|(?:,|\s(?:but|so|and|then))\s*(?=(?:who|what|when|where|why|how|which)\b)"
)
SENTENCE_BREAK = re.compile(f"({BREAK})", re.IGNORECASE)
JOINS = re.compile(r"\s+[-–—]+\s+|,\s*")  # a dash or a comma: the sentence goes on
# Words by which a sentence points back at an earlier one ("this man", "did it work").
REFERS_BACK = re.compile(
    r"\b(it|he|him|his|she|her)\b|\bthere(?=\s*(?:[?.!]|$))|\b(this|that|these|those)\b(?=\s*(?:[?.!]|$)|\s+(?:man|woman|guy|person|"
    r"people|place|one|ones|thing|country|city|was|is|were|are|true|right|so|real|correct)\b)"
)  # but not "that ship", "at this point"
# Also any comma ("aww sounds fun tbh, were they cheering?", "how long was the ride, sounds
# brutal"), for dropping clauses that are only chatter.
CLAUSE_BREAK = re.compile(BREAK + r"|,\s*", re.IGNORECASE)
YES_NO = re.compile(r"(did|does|do|is|are|was|were|can|could|has|have|had|will|would)\b")
THANKS = re.compile(r"\W*(thanks?|thank you|thx|ty|tysm|tyvm|cheers|much appreciated|appreciate it)\b")
ASKS_WITHIN = re.compile(r"\b(who|what|when|where|why|how|which)\b")
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


# Words that say what kind of answer is wanted, not what it is about ("which city", "what
# place"), and verbs too light to be asked about ("who made the trip", "at what point"):
# never the word a question asks about.
# Terms (stems) of a question that asks for a name: "what's the bridge called", "her name".
NAMING = frozenset(["name", "call"])
KIND_WORDS = frozenset(
    """city town place country year date month century people person part point body organisation
    organization department
    make made makes take took taken takes go went gone goes come came""".split()  # noqa: SIM905
)
