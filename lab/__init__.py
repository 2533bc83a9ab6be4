"""The offline accuracy lab: a seeded synthetic world, text-to-text task families over it, a
small T5 pretrained on span corruption + the prefixed multitask mixture (so that soft prompts can
steer it, as they steer real T5), the promptability gate, and the paper's comparison protocol."""
