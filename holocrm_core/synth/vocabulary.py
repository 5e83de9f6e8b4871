"""Word lists and text templates the sample CRM export is composed from.

Everything here is plain data. Templates may hold one or more slots ({person}, {product}, {company},
{day}, {rep}, {minutes}) that the generator fills per row, so a few hundred fragments give millions of
distinct, realistic activity notes. Signal phrases (positive and negative buying signals) come with
paraphrases, so keyword search alone does not find them all and semantic search has something to do.
"""

from __future__ import annotations

INDUSTRIES = [
    "financial services",
    "healthcare",
    "retail",
    "manufacturing",
    "software",
    "logistics",
    "education",
    "energy",
    "media",
    "real estate",
    "telecom",
    "government",
]
INDUSTRY_WEIGHTS = [0.11, 0.10, 0.09, 0.10, 0.14, 0.07, 0.06, 0.06, 0.06, 0.06, 0.07, 0.08]

# Words a company name in each industry ends with ("Bluepeak Health", "Northwind Logistics").
INDUSTRY_NOUNS = {
    "financial services": ["Capital", "Financial", "Fintech", "Payments", "Bank", "Lending", "Wealth"],
    "healthcare": ["Health", "Medical", "Care", "Clinics", "Therapeutics", "Diagnostics", "Biolabs"],
    "retail": ["Retail", "Stores", "Outfitters", "Market", "Goods", "Apparel", "Brands"],
    "manufacturing": ["Manufacturing", "Industries", "Fabrication", "Components", "Machinery", "Metals"],
    "software": ["Software", "Labs", "Systems", "Cloud", "Analytics", "Technologies", "AI", "Data"],
    "logistics": ["Logistics", "Freight", "Shipping", "Transport", "Supply", "Cargo"],
    "education": ["Learning", "Academy", "Education", "University", "Schools", "Institute"],
    "energy": ["Energy", "Power", "Solar", "Renewables", "Utilities", "Grid"],
    "media": ["Media", "Studios", "Publishing", "Broadcasting", "Entertainment", "Digital"],
    "real estate": ["Realty", "Properties", "Estates", "Homes", "Development", "Land"],
    "telecom": ["Telecom", "Networks", "Wireless", "Communications", "Fiber", "Mobile"],
    "government": ["County", "Agency", "Authority", "Department", "Council", "Services"],
}

NAME_HEADS = [
    "Blue", "North", "South", "East", "West", "Silver", "Golden", "Red", "Green", "Iron", "Stone", "River",
    "Lake", "Sun", "Star", "Bright", "Clear", "Swift", "Quick", "Summit", "Peak", "Cedar", "Oak", "Pine",
    "Maple", "Harbor", "Bay", "Crest", "Ridge", "Valley", "Prairie", "Atlas", "Nova", "Terra", "Aqua",
    "Vertex", "Apex", "Orbit", "Pixel", "Quantum", "Zenith", "Echo", "Falcon", "Eagle", "Hawk", "Wolf",
    "Fox", "Bear", "Lion", "Tiger", "Cobalt", "Amber", "Crimson", "Indigo", "Ivory", "Jade", "Onyx",
    "Ruby", "Sapphire", "Emerald", "Granite", "Copper", "Titan", "Polar", "Arctic", "Coastal", "Metro",
    "Urban", "Grand", "Prime", "True", "Bold", "Keen", "Noble", "Vivid", "Lumen", "Sol", "Astra", "Helix",
]
NAME_TAILS = [
    "peak", "wind", "field", "bridge", "gate", "point", "stone", "water", "wood", "view", "line", "path",
    "way", "works", "forge", "light", "spring", "brook", "haven", "port", "shore", "crest", "ridge",
    "vale", "mark", "scape", "core", "wave", "stream", "sight", "spark", "leaf", "root", "rock", "hill",
    "land", "star", "sky", "moor", "dale", "ford", "ton", "ley", "well", "mont", "berg", "holm", "by",
]
LEGAL_SUFFIXES = ["Inc.", "Corp", "LLC", "Ltd", "Group", "Co.", ""]
LEGAL_SUFFIX_WEIGHTS = [0.26, 0.14, 0.18, 0.1, 0.08, 0.04, 0.2]
# Variants a duplicate company record uses for a legal suffix ("Acme Corp" vs "Acme Corporation").
SUFFIX_VARIANTS = {
    "Inc.": ["Incorporated", "Inc", "Corp."],
    "Corp": ["Corporation", "Corp.", "Inc."],
    "LLC": ["L.L.C.", "Inc.", "Company"],
    "Ltd": ["Limited", "Ltd.", "Group"],
    "Group": ["Holdings", "Group Inc.", "Grp"],
    "Co.": ["Company", "& Co", "Inc."],
    "": ["Inc.", "Corp", "LLC"],
}

# (country, region, currency, phone country code, weight, [(city, area code)])
GEOGRAPHY = [
    ("United States", "North America", "USD", "1", 0.55,
     [("New York", "212"), ("San Francisco", "415"), ("Chicago", "312"), ("Austin", "512"), ("Boston", "617"),
      ("Seattle", "206"), ("Atlanta", "404"), ("Denver", "303"), ("Los Angeles", "213"), ("Miami", "305")]),
    ("Canada", "North America", "USD", "1", 0.05,
     [("Toronto", "416"), ("Vancouver", "604"), ("Montreal", "514")]),
    ("United Kingdom", "EMEA", "GBP", "44", 0.08,
     [("London", "20"), ("Manchester", "161"), ("Edinburgh", "131"), ("Bristol", "117")]),
    ("Germany", "EMEA", "EUR", "49", 0.06, [("Berlin", "30"), ("Munich", "89"), ("Hamburg", "40")]),
    ("France", "EMEA", "EUR", "33", 0.04, [("Paris", "1"), ("Lyon", "4")]),
    ("Netherlands", "EMEA", "EUR", "31", 0.03, [("Amsterdam", "20"), ("Rotterdam", "10")]),
    ("Spain", "EMEA", "EUR", "34", 0.02, [("Madrid", "91"), ("Barcelona", "93")]),
    ("Ireland", "EMEA", "EUR", "353", 0.01, [("Dublin", "1")]),
    ("Sweden", "EMEA", "EUR", "46", 0.01, [("Stockholm", "8")]),
    ("Australia", "APAC", "USD", "61", 0.04, [("Sydney", "2"), ("Melbourne", "3")]),
    ("Singapore", "APAC", "USD", "65", 0.02, [("Singapore", "6")]),
    ("Japan", "APAC", "USD", "81", 0.02, [("Tokyo", "3"), ("Osaka", "6")]),
    ("India", "APAC", "USD", "91", 0.03, [("Bengaluru", "80"), ("Mumbai", "22")]),
    ("Brazil", "LATAM", "USD", "55", 0.02, [("Sao Paulo", "11"), ("Rio de Janeiro", "21")]),
    ("Mexico", "LATAM", "USD", "52", 0.02, [("Mexico City", "55"), ("Guadalajara", "33")]),
]

# (display, ascii for e-mail). Diverse on purpose; a few carry accents so readers must handle UTF-8.
FIRST_NAMES = [
    ("Robert", "robert"), ("William", "william"), ("Katherine", "katherine"), ("Elizabeth", "elizabeth"),
    ("James", "james"), ("Michael", "michael"), ("Jennifer", "jennifer"), ("Christopher", "christopher"),
    ("Daniel", "daniel"), ("Margaret", "margaret"), ("Richard", "richard"), ("Joseph", "joseph"),
    ("Thomas", "thomas"), ("Alexander", "alexander"), ("Samantha", "samantha"), ("Jonathan", "jonathan"),
    ("Nicholas", "nicholas"), ("Patricia", "patricia"), ("Benjamin", "benjamin"), ("Matthew", "matthew"),
    ("Anthony", "anthony"), ("Steven", "steven"), ("Rebecca", "rebecca"), ("Victoria", "victoria"),
    ("Andrew", "andrew"), ("Edward", "edward"), ("Catherine", "catherine"), ("Susan", "susan"),
    ("Emily", "emily"), ("Olivia", "olivia"), ("Sophia", "sophia"), ("Emma", "emma"), ("Ava", "ava"),
    ("Liam", "liam"), ("Noah", "noah"), ("Ethan", "ethan"), ("Lucas", "lucas"), ("Mia", "mia"),
    ("Grace", "grace"), ("Hannah", "hannah"), ("Laura", "laura"), ("Sarah", "sarah"), ("Rachel", "rachel"),
    ("David", "david"), ("Mark", "mark"), ("Paul", "paul"), ("Kevin", "kevin"), ("Brian", "brian"),
    ("Jose", "jose"), ("María", "maria"), ("Carlos", "carlos"), ("Lucía", "lucia"), ("Diego", "diego"),
    ("Sofía", "sofia"), ("Javier", "javier"), ("Camila", "camila"), ("Mateo", "mateo"), ("Valentina", "valentina"),
    ("Wei", "wei"), ("Chen", "chen"), ("Li", "li"), ("Jing", "jing"), ("Xiaoming", "xiaoming"), ("Mei", "mei"),
    ("Hiroshi", "hiroshi"), ("Yuki", "yuki"), ("Kenji", "kenji"), ("Aiko", "aiko"), ("Min-jun", "minjun"),
    ("Ji-woo", "jiwoo"), ("Priya", "priya"), ("Arjun", "arjun"), ("Rahul", "rahul"), ("Ananya", "ananya"),
    ("Vikram", "vikram"), ("Deepa", "deepa"), ("Sanjay", "sanjay"), ("Aisha", "aisha"), ("Omar", "omar"),
    ("Fatima", "fatima"), ("Yusuf", "yusuf"), ("Layla", "layla"), ("Hassan", "hassan"), ("Amara", "amara"),
    ("Kwame", "kwame"), ("Chidi", "chidi"), ("Zainab", "zainab"), ("Tunde", "tunde"), ("Nia", "nia"),
    ("Lars", "lars"), ("Ingrid", "ingrid"), ("Björn", "bjorn"), ("Søren", "soren"), ("Astrid", "astrid"),
    ("Pierre", "pierre"), ("Chloé", "chloe"), ("Hans", "hans"), ("Greta", "greta"), ("Luca", "luca"),
    ("Giulia", "giulia"), ("Marco", "marco"), ("Zoë", "zoe"), ("Dmitri", "dmitri"), ("Olga", "olga"),
    ("Ivan", "ivan"), ("Natalia", "natalia"), ("Tomasz", "tomasz"), ("Agnieszka", "agnieszka"),
    ("Sean", "sean"), ("Siobhan", "siobhan"), ("Connor", "connor"), ("Aoife", "aoife"), ("Malik", "malik"),
    ("Jamal", "jamal"), ("Keisha", "keisha"), ("Andre", "andre"), ("Tyrone", "tyrone"), ("Imani", "imani"),
    ("Noa", "noa"), ("Eitan", "eitan"), ("Leila", "leila"), ("Reza", "reza"), ("Nguyen", "nguyen"),
    ("Linh", "linh"), ("Thanh", "thanh"), ("Ravi", "ravi"), ("Meera", "meera"), ("Kiran", "kiran"),
]

LAST_NAMES = [
    ("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"),
    ("Jones", "jones"), ("Miller", "miller"), ("Davis", "davis"), ("Wilson", "wilson"),
    ("Anderson", "anderson"), ("Taylor", "taylor"), ("Thomas", "thomas"), ("Moore", "moore"),
    ("Martin", "martin"), ("Jackson", "jackson"), ("Thompson", "thompson"), ("White", "white"),
    ("Harris", "harris"), ("Clark", "clark"), ("Lewis", "lewis"), ("Robinson", "robinson"),
    ("Walker", "walker"), ("Young", "young"), ("Allen", "allen"), ("King", "king"), ("Wright", "wright"),
    ("Scott", "scott"), ("Hill", "hill"), ("Green", "green"), ("Adams", "adams"), ("Baker", "baker"),
    ("Nelson", "nelson"), ("Carter", "carter"), ("Mitchell", "mitchell"), ("Roberts", "roberts"),
    ("Turner", "turner"), ("Phillips", "phillips"), ("Campbell", "campbell"), ("Parker", "parker"),
    ("Evans", "evans"), ("Edwards", "edwards"), ("Collins", "collins"), ("Stewart", "stewart"),
    ("Morris", "morris"), ("Murphy", "murphy"), ("Cook", "cook"), ("Rogers", "rogers"),
    ("O'Brien", "obrien"), ("O'Connor", "oconnor"), ("Kelly", "kelly"), ("Sullivan", "sullivan"),
    ("Garcia", "garcia"), ("Rodriguez", "rodriguez"), ("Martinez", "martinez"), ("Hernandez", "hernandez"),
    ("Lopez", "lopez"), ("González", "gonzalez"), ("Pérez", "perez"), ("Sanchez", "sanchez"),
    ("Ramirez", "ramirez"), ("Torres", "torres"), ("Flores", "flores"), ("Rivera", "rivera"),
    ("Chen", "chen"), ("Wang", "wang"), ("Li", "li"), ("Zhang", "zhang"), ("Liu", "liu"), ("Huang", "huang"),
    ("Zhao", "zhao"), ("Wu", "wu"), ("Zhou", "zhou"), ("Wei", "wei"), ("Tanaka", "tanaka"),
    ("Suzuki", "suzuki"), ("Sato", "sato"), ("Watanabe", "watanabe"), ("Kim", "kim"), ("Park", "park"),
    ("Lee", "lee"), ("Choi", "choi"), ("Patel", "patel"), ("Sharma", "sharma"), ("Singh", "singh"),
    ("Gupta", "gupta"), ("Kumar", "kumar"), ("Reddy", "reddy"), ("Iyer", "iyer"), ("Nair", "nair"),
    ("Khan", "khan"), ("Ahmed", "ahmed"), ("Hussain", "hussain"), ("Ali", "ali"), ("Haddad", "haddad"),
    ("Nasser", "nasser"), ("Okafor", "okafor"), ("Adeyemi", "adeyemi"), ("Mensah", "mensah"),
    ("Nwosu", "nwosu"), ("Diallo", "diallo"), ("Mwangi", "mwangi"), ("Müller", "mueller"),
    ("Schmidt", "schmidt"), ("Schneider", "schneider"), ("Fischer", "fischer"), ("Weber", "weber"),
    ("Dubois", "dubois"), ("Lefèvre", "lefevre"), ("Moreau", "moreau"), ("Rossi", "rossi"),
    ("Russo", "russo"), ("Bianchi", "bianchi"), ("Romano", "romano"), ("Johansson", "johansson"),
    ("Andersson", "andersson"), ("Nielsen", "nielsen"), ("Hansen", "hansen"), ("Larsen", "larsen"),
    ("Kowalski", "kowalski"), ("Nowak", "nowak"), ("Ivanov", "ivanov"), ("Petrov", "petrov"),
    ("Novak", "novak"), ("Cohen", "cohen"), ("Levi", "levi"), ("Nguyen", "nguyen"), ("Tran", "tran"),
    ("Pham", "pham"), ("Silva", "silva"), ("Santos", "santos"), ("Oliveira", "oliveira"),
    ("Costa", "costa"), ("Ferreira", "ferreira"), ("Murray", "murray"), ("Byrne", "byrne"),
]

NICKNAMES = {
    "Robert": "Bob", "William": "Bill", "Katherine": "Kate", "Elizabeth": "Liz", "James": "Jim",
    "Michael": "Mike", "Jennifer": "Jen", "Christopher": "Chris", "Daniel": "Dan", "Margaret": "Maggie",
    "Richard": "Rick", "Joseph": "Joe", "Thomas": "Tom", "Alexander": "Alex", "Samantha": "Sam",
    "Jonathan": "Jon", "Nicholas": "Nick", "Patricia": "Pat", "Benjamin": "Ben", "Matthew": "Matt",
    "Anthony": "Tony", "Steven": "Steve", "Rebecca": "Becky", "Victoria": "Vicky", "Andrew": "Andy",
    "Edward": "Ed", "Catherine": "Cathy", "Susan": "Sue", "Valentina": "Vale", "Natalia": "Nata",
}

SENIORITIES = ["c_level", "vp", "director", "manager", "individual"]
SENIORITY_WEIGHTS = [0.06, 0.10, 0.18, 0.28, 0.38]
FUNCTIONS = ["Sales", "Marketing", "Finance", "Operations", "IT", "Engineering", "Procurement", "People"]
C_LEVEL_TITLES = {
    "Sales": "Chief Revenue Officer", "Marketing": "Chief Marketing Officer", "Finance": "Chief Financial Officer",
    "Operations": "Chief Operating Officer", "IT": "Chief Information Officer",
    "Engineering": "Chief Technology Officer", "Procurement": "Chief Procurement Officer",
    "People": "Chief People Officer",
}
TITLE_PATTERNS = {
    "vp": ["VP of {f}", "Vice President, {f}", "SVP {f}"],
    "director": ["Director of {f}", "Head of {f}", "Senior Director, {f}"],
    "manager": ["{f} Manager", "Senior {f} Manager", "{f} Team Lead"],
    "individual": ["{f} Analyst", "{f} Specialist", "Senior {f} Associate", "{f} Coordinator"],
}

LEAD_SOURCES = ["referral", "partner", "event", "web", "cold_list"]
LEAD_SOURCE_WEIGHTS = [0.12, 0.10, 0.18, 0.35, 0.25]

PRODUCTS = [
    "HoloCRM Starter", "Analytics Suite", "Data Platform", "Support Plus", "Integration Pack",
    "Enterprise License", "Onboarding Services", "AI Insights Add-on",
]
PRODUCT_WEIGHTS = [0.18, 0.16, 0.14, 0.1, 0.1, 0.12, 0.1, 0.1]
DEAL_TITLE_PATTERNS = ["{company} - {product}", "{product} for {company}", "{company} {product} expansion",
                       "{company} renewal ({product})", "{product} pilot - {company}"]
DEAL_TITLE_NO_COMPANY = ["{product} - {person}", "{product} (individual licence)"]

CONTACT_TAGS = ["newsletter", "webinar", "trade-show", "vip", "decision-maker", "champion", "technical",
                "renewal", "partner-referral", "event-2025"]
COMPANY_TAGS = ["strategic", "partner", "target-account", "expansion", "at-risk", "reference", "public-sector"]
CONTACT_NOTES = [
    "Met at {event}.", "Prefers email over calls.", "Based in the {city} office.", "Referred by {rep}.",
    "Reports to the COO.", "Evaluating vendors this year.", "Attended our {event} session.",
    "Uses a spreadsheet-based process today.", "Works closely with procurement.",
]
EVENTS = ["SaaStr", "Web Summit", "the Data Council meetup", "our spring webinar", "Dreamforce",
          "the regional partner day", "the customer roadshow"]
COMPANY_NOTES = ["Key account in {city}.", "Multiple business units.", "Recently raised funding.",
                 "Long procurement cycles.", "Existing partner integration.", "Expanding into new markets."]

PERSONAL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"]

DAYS = ["on Monday", "on Tuesday", "next week", "by Friday", "in two weeks", "after the holidays",
        "early next month", "tomorrow", "this Thursday", "end of the quarter"]
MINUTES = ["15", "20", "30", "45", "60"]

# Activity type order matches schema.ActivityType: email, call, meeting, note, proposal.
ACTIVITY_TYPES = ["email", "call", "meeting", "note", "proposal"]
DIRECTIONS = ["inbound", "outbound", "internal"]

OPENERS = {
    ("email", "outbound"): [
        "Sent {person} a follow-up email.", "Emailed {person} a short recap.", "Followed up by email.",
        "Sent over the one-pager on {product}.", "Shared a customer story by email.",
        "Wrote to {person} about next steps.",
    ],
    ("email", "inbound"): [
        "{person} replied to our last email.", "Got an email from {person}.", "{person} wrote back.",
        "Inbound email from {person} at {company}.", "Reply received from {person}.",
    ],
    ("call", "outbound"): [
        "Had a {minutes}-minute call with {person}.", "Quick call with {person}.", "Called {person}.",
        "Discovery call with {person} from {company}.", "Phone check-in with {person}.",
    ],
    ("call", "inbound"): [
        "{person} called us back.", "Inbound call from {person}.", "{person} rang to ask a few questions.",
    ],
    ("meeting", "outbound"): [
        "Met with {person} and two colleagues.", "Onsite meeting at {company}.",
        "Video demo with {person}'s team.", "Lunch meeting with {person}.",
        "Workshop with the {company} team.",
    ],
    ("meeting", "inbound"): [
        "{person} invited us to present to their leadership.", "{company} set up a meeting with us.",
    ],
    ("note", "internal"): [
        "Internal note:", "Account note:", "FYI -", "Note for the team:", "Update from {rep}:",
        "Pipeline review note:",
    ],
    ("proposal", "outbound"): [
        "Sent the proposal for {product}.", "Shared the {product} quote with {person}.",
        "Proposal delivered to {company}.", "Sent revised pricing for {product}.",
    ],
}

# Buying signals. Positive ones raise the true conversion/win probability, negative ones lower it.
POSITIVE_SIGNALS = [
    "Budget approved for {product} this quarter.",
    "They confirmed the budget is approved.",
    "Signed off by the CFO, moving to paperwork.",
    "The CFO signed off on the spend.",
    "{person} asked for a proposal by end of month.",
    "Asked for a proposal covering {product}.",
    "Requested a formal quote for {product}.",
    "Strong interest from the team; they want to start a pilot.",
    "Champion is pushing internally and has executive sponsorship.",
    "Procurement green-lit the purchase.",
    "Finance gave the go-ahead for the spend.",
    "They said the ROI case is compelling and want to move forward.",
    "Legal review of the contract has started.",
    "Keen to get started {day}.",
    "Money has been set aside for this in the current budget.",
    "Leadership agreed to fund the project.",
    "They want a contract draft {day}.",
    "Very positive reaction to the demo; decision expected soon.",
]
NEGATIVE_SIGNALS = [
    "Pricing concerns came up again.",
    "They are worried about the cost of {product}.",
    "Worried about the cost compared with their current tool.",
    "Went with a competitor for now.",
    "They chose another vendor.",
    "No response to the last two emails.",
    "No response since the demo.",
    "Radio silence after we sent pricing.",
    "Budget frozen until next fiscal year.",
    "Decision pushed out indefinitely.",
    "Said it is too expensive for them right now.",
    "Price is a sticking point for {person}.",
    "Not a priority this year; asked us to check back later.",
    "Unhappy with the implementation timeline.",
    "Could not get hold of {person}; left a voicemail, no reply.",
    "They signed with a rival product last week.",
    "The spend is hard to justify for them at the moment.",
]
NEUTRAL_SENTENCES = [
    "Walked through the {product} demo.",
    "Shared a case study from their industry.",
    "Discussed integration with their current stack.",
    "Covered onboarding timelines and support options.",
    "Answered questions about data security and SSO.",
    "Introduced {rep} from our solutions team.",
    "Reviewed their current workflow and reporting needs.",
    "Talked about data migration from their old CRM.",
    "Went over user counts and licence tiers.",
    "They asked how reporting works across regions.",
    "Clarified the difference between the plans.",
    "Explained the {product} roadmap.",
]
CLOSERS = [
    "Next step: follow up {day}.", "Will send more details {day}.", "Agreed to reconnect {day}.",
    "Booked a follow-up call {day}.", "Waiting on their internal review.", "", "", "",
]
# After the outcome: these rows leak the answer to a model that ignores time (a deliberate trap).
POST_CONVERTED = [
    "Kickoff call for onboarding scheduled {day}.", "Contract countersigned; welcome pack sent.",
    "Onboarding session completed with {person}.", "Handed over to customer success.",
    "Invoice issued for the first year of {product}.", "Set up user accounts for the {company} team.",
    "Training session for new users of {product}.",
]
POST_DISQUALIFIED = [
    "Closed out the lead in the CRM.", "Marked as disqualified; may revisit next year.",
    "Sent a final check-in, no reply expected.", "Moved to the nurture list.",
]
POST_WON = [
    "Deal closed won - handoff to onboarding.", "Signed order form received for {product}.",
    "Provisioning started for {company}.", "Kickoff meeting booked {day}.",
]
POST_LOST = [
    "Loss review: price was the main factor.", "Closed lost; they went another way.",
    "Loss review done with {rep}.", "Archived the opportunity; revisit next year.",
]

SUBJECTS = {
    "email": ["Re: {product}", "Following up", "Next steps", "Quick question", "Re: pricing for {product}",
              "{company} x HoloCRM", "Checking in", "Recap of our conversation", "Re: your questions"],
    "call": ["Call with {person}", "Discovery call", "Check-in call", "Follow-up call", "Pricing call"],
    "meeting": ["Demo: {product}", "Meeting at {company}", "Workshop", "Quarterly review", "Intro meeting"],
    "note": ["Internal note", "Account update", "Deal note", "Pipeline review", "Note"],
    "proposal": ["Proposal: {product} for {company}", "Quote for {product}", "Revised proposal",
                 "Pricing proposal"],
}
POST_SUBJECTS_POSITIVE = ["Onboarding kickoff", "Welcome to HoloCRM", "Customer handoff", "Account setup"]
POST_SUBJECTS_NEGATIVE = ["Closing the loop", "Final follow-up", "Loss review", "Archived"]

ACCOUNT_TIERS = ["tier_1", "tier_2", "tier_3"]
FORECAST_OPEN = ["pipeline", "best_case", "commit"]
