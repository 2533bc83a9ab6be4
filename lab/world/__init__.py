"""The lab's seeded synthetic world and the task families over it.

world, lexicon, vocab   the world: words with checkable attributes, splits, the word tokenizer
scenes, corpus          facts about people; the world text for span corruption
family, families_*      what a family is; the lexical, context and string families
registry                every family and its role in the protocol
tasks                   turning a family into training data
"""
