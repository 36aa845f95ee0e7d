"""Instruction prompts for distilling the smollm2 draft, generated from templates × subjects.

Deterministic. `split("train")` and `split("held_out")` share no template and no subject, so the
held-out agreement the model card reports is on prompts the training never saw, in wording or
topic. bench/tandem.py's smollm2 prompts (tandem/server/prompts.py CHAT_PROMPTS) are hand-written
and appear in neither.
"""

from __future__ import annotations

import random

# Each template takes one subject; `{s}` is replaced. Subjects are grouped by the kind of
# template they fit, so that every prompt reads as a real request.
TEMPLATES = {
    "thing": [
        "Explain {s} in simple terms.",
        "What is {s}?",
        "Give me three interesting facts about {s}.",
        "Write a short paragraph about {s}.",
        "Describe {s} to a ten-year-old.",
        "What are the main advantages and disadvantages of {s}?",
        "Write a haiku about {s}.",
        "Summarize the history of {s} in a few sentences.",
        "Why is {s} important?",
        "Write a short poem about {s}.",
        "List five words associated with {s}.",
        "Tell me a short story that involves {s}.",
        "How would you explain {s} to someone from the year 1800?",
        "What are common misconceptions about {s}?",
        "Compose a limerick about {s}.",
        "What questions should I ask to learn more about {s}?",
        "Give a one-sentence definition of {s}.",
        "Write a product description for a book about {s}.",
        "How does {s} affect everyday life?",
    ],
    "activity": [
        "Give me three tips for {s}.",
        "How do I get started with {s}?",
        "What are the most common mistakes people make when {s}?",
        "Write a step-by-step guide to {s}.",
        "What equipment do I need for {s}?",
        "Why do people enjoy {s}?",
        "Make a weekly plan for {s}.",
        "What are the health benefits of {s}?",
        "Write a motivational message for someone who is {s}.",
        "How can I get better at {s}?",
        "Explain the basic rules or principles of {s}.",
        "What is a good goal for a beginner who is {s}?",
    ],
    "text": [
        "Rewrite this sentence to sound more formal: {s}",
        "Translate this sentence into French: {s}",
        "Fix the grammar in this sentence: {s}",
        "What is the main idea of this sentence? {s}",
        "Make this sentence shorter: {s}",
        "Turn this sentence into a question: {s}",
        "Is this sentence positive, negative or neutral? {s}",
        "Continue this story: {s}",
        "Explain what this sentence means: {s}",
        "Rewrite this sentence for a children's book: {s}",
    ],
    "question": [
        "{s}",
        "Answer briefly: {s}",
        "Please answer the following question. {s}",
        "I was wondering, {s}",
        "Can you help me? {s}",
        "Answer in one paragraph: {s}",
    ],
}

SUBJECTS = {
    "thing": [
        "photosynthesis", "the water cycle", "black holes", "the printing press", "vaccines",
        "the internet", "volcanoes", "the Roman Empire", "electric cars", "the moon", "honeybees",
        "the human heart", "climate change", "democracy", "the Pythagorean theorem", "gravity",
        "coffee", "the Great Wall of China", "solar panels", "DNA", "the stock market", "rainbows",
        "the French Revolution", "earthquakes", "recycling", "the immune system", "jazz music",
        "the Amazon rainforest", "artificial intelligence", "chess", "the periodic table",
        "inflation", "the Olympic Games", "penguins", "the telephone", "blockchain", "tides",
        "the Renaissance", "antibiotics", "the speed of light", "coral reefs", "the Sahara desert",
        "bicycles", "the human brain", "nuclear energy", "the Moon landing", "libraries",
        "origami", "the Silk Road", "dinosaurs", "wind turbines", "the ozone layer", "money",
        "the microscope", "sleep", "friendship", "the alphabet", "maps", "bread", "the ocean",
        "elephants", "the Industrial Revolution", "magnets", "clouds", "the calendar",
        "public transport", "music theory", "the pyramids of Egypt", "batteries", "the seasons",
        "smartphones", "tea", "mountains", "the Milky Way", "evolution", "the Eiffel Tower",
        "spiders", "compound interest", "the United Nations", "rivers", "glaciers", "robots",
        "the piano", "the Cold War", "vitamins", "satellites", "forests", "the human skeleton",
        "languages", "electricity", "cheese", "the Big Bang", "owls", "lighthouses", "kindness",
        "the metric system", "submarines", "photography", "chocolate", "the Arctic", "fungi",
        "cryptography", "airplanes", "volunteering", "the Mona Lisa", "deserts", "whales",
        "the solar system", "plastic pollution", "superconductors", "the steam engine",
        "quantum computing", "bees and pollination", "the Nile river", "microplastics",
    ],
    "activity": [
        "learning to cook", "running a marathon", "learning a new language", "gardening",
        "saving money", "studying for exams", "learning to play the guitar", "hiking",
        "public speaking", "writing a novel", "meditating", "learning to program", "swimming",
        "painting with watercolors", "taking photographs", "baking bread", "learning to draw",
        "keeping a journal", "traveling on a budget", "doing yoga", "playing chess",
        "reading more books", "cycling to work", "learning to dance", "camping", "fishing",
        "birdwatching", "knitting", "rock climbing", "managing time", "making new friends",
        "working from home", "learning to skateboard", "growing tomatoes", "lifting weights",
        "preparing for a job interview", "decluttering a home", "learning to sing", "sailing",
        "raising a puppy", "brewing coffee at home", "building a website", "writing poetry",
        "learning to juggle", "cleaning the kitchen", "planning a wedding", "starting a podcast",
    ],
    "text": [
        "the cat sat on the mat and looked out the window.",
        "we was going to the store yesterday but it were closed.",
        "The meeting has been moved to Thursday afternoon.",
        "I can't believe how good this pizza is!",
        "The train was late again and everyone was annoyed.",
        "She opened the old box and found a map inside.",
        "Our team finished the project two weeks early.",
        "The weather today is cold, windy and grey.",
        "He have been working here since three years.",
        "The little robot wanted to see the ocean for the first time.",
        "Please remember to turn off the lights when you leave.",
        "The new library downtown opens next Monday.",
        "They decided to walk home because the night was warm.",
        "My phone battery dies before lunch every day.",
        "The scientist looked at the results and smiled.",
        "A strange light appeared over the village at midnight.",
        "The concert was loud, crowded and absolutely wonderful.",
        "Customers can return items within thirty days.",
        "The dog refused to go outside in the rain.",
        "I think that we should to leave early tomorrow.",
        "The garden was full of flowers after the spring rain.",
        "Nobody knew who had left the package at the door.",
        "This software update fixes several bugs.",
        "The children built a castle out of cardboard boxes.",
    ],
    "question": [
        "What is the capital of Australia?", "How many legs does a spider have?",
        "Why is the sky blue?", "How do airplanes stay in the air?",
        "What causes the seasons on Earth?", "How does a refrigerator work?",
        "What is the difference between weather and climate?", "Why do cats purr?",
        "How long does it take light from the Sun to reach Earth?", "What is a prime number?",
        "Who invented the light bulb?", "Why do leaves change color in autumn?",
        "How do vaccines train the immune system?", "What is the boiling point of water?",
        "How does a computer store information?", "Why do we have leap years?",
        "What is the largest animal on Earth?", "How do plants get water?",
        "What makes a rainbow appear?", "Why is exercise good for the brain?",
        "How do birds know where to migrate?", "What is the difference between a virus and a bacterium?",
        "How are mountains formed?", "What is the tallest building in the world?",
        "Why does ice float on water?", "How does the heart pump blood?",
        "What is an atom made of?", "How do bees make honey?",
        "What is the longest river in the world?", "Why do we dream?",
        "How does GPS know where I am?", "What is the purpose of the United Nations?",
        "How many continents are there?", "Why do stars twinkle?",
        "What is machine learning?", "How does a battery store energy?",
        "What is the difference between a lake and a pond?", "Why do onions make you cry?",
        "How does the Internet work?", "What is the speed of sound?",
        "What is a black hole?", "How do fish breathe underwater?",
        "Why is the ocean salty?", "What is the largest planet in the solar system?",
        "How do you calculate the area of a circle?", "What is the meaning of the word 'serendipity'?",
        "Why do we need sleep?", "How does a compass work?",
    ],
}


def split(name: str, seed: int = 1234) -> list[str]:
    """The prompts of `name` ("train" or "held_out"), shuffled with `seed`.

    Every fifth template and every fifth subject of each kind (by position) is held out; a prompt
    is held out only when both its template and its subject are, and is in training only when
    neither is, so the two sets share no template and no subject."""
    if name not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {name!r}")
    want_held = name == "held_out"
    out = []
    for kind, templates in TEMPLATES.items():
        for ti, t in enumerate(templates):
            for si, s in enumerate(SUBJECTS[kind]):
                t_held, s_held = ti % 5 == 4, si % 5 == 4
                if want_held and t_held and s_held:
                    out.append(t.format(s=s))
                elif not want_held and not t_held and not s_held:
                    out.append(t.format(s=s))
    random.Random(seed).shuffle(out)
    return out


if __name__ == "__main__":
    for n in ("train", "held_out"):
        print(n, len(split(n)))
