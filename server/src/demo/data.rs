//! The vocabulary of the demo marketplace and the pure functions that turn a seed into records:
//! the category tree, manufacturers, retailers and products.
//!
//! Nothing here touches storage. Every generator takes the seed and an index and builds its
//! record from a random generator seeded by both, so a product can be rebuilt from its index
//! alone: the fill never holds more than one batch of products in memory, whatever `--products`
//! says, and the same seed gives the same marketplace.

use mercato_engine::catalog::{ProductUpsert, RetailerInput};
use mercato_engine::money::{Currency, Money};
use mercato_engine::tables::{
    Address, CountryCode, PaymentTerms, PriceTier, ProductStatus, VerificationStatus,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Manufacturers of the demo marketplace.
pub const MANUFACTURERS: usize = 50;
/// Retailers (buyer companies) of the demo marketplace.
pub const RETAILERS: usize = 200;
/// Manufacturers (0-based indexes) whose verification is still pending: their products stay
/// drafts and cannot be ordered.
pub const PENDING_MANUFACTURERS: [usize; 4] = [12, 27, 38, 44];
/// Upper bound on one line's value at the minimum order quantity, in cents: keeps the load
/// generator's five-line orders below the demo buyer's approval threshold.
pub const LINE_VALUE_AT_MINIMUM_CENTS_MAX: i64 = 500_000;
/// The demo buyer's company orders above this (in cents) wait for the buyer-approver.
pub const DEMO_RETAILER_APPROVAL_THRESHOLD_CENTS: i64 = 5_000_000;
/// The demo buyer's company credit limit, in cents: large, so that load tests placing
/// thousands of orders on net terms do not run into it.
pub const DEMO_RETAILER_CREDIT_LIMIT_CENTS: i64 = 100_000_000_000;

/// A leaf category and what its products look like.
pub struct Leaf {
    pub name: &'static str,
    /// Product kinds, e.g. "Espresso Roast Beans".
    pub items: &'static [&'static str],
    /// Pack sizes or variants appended to the name, e.g. "500 g".
    pub variants: &'static [&'static str],
    pub unit: &'static str,
    /// Base price range, in cents, inclusive.
    pub price_cents: (i64, i64),
    /// Case packs to choose from.
    pub case_packs: &'static [u32],
    /// One characteristic attribute of the category and its values.
    pub attribute: (&'static str, &'static [&'static str]),
}

/// A second-level category.
pub struct Branch {
    pub name: &'static str,
    pub leaves: &'static [Leaf],
}

/// A root category, with the word manufacturers of that trade put after their brand.
pub struct Root {
    pub name: &'static str,
    pub trade: &'static str,
    pub branches: &'static [Branch],
}

#[allow(clippy::too_many_arguments)]
const fn leaf(
    name: &'static str,
    items: &'static [&'static str],
    variants: &'static [&'static str],
    unit: &'static str,
    price_cents: (i64, i64),
    case_packs: &'static [u32],
    attribute: (&'static str, &'static [&'static str]),
) -> Leaf {
    Leaf {
        name,
        items,
        variants,
        unit,
        price_cents,
        case_packs,
        attribute,
    }
}

const ORIGINS: &[&str] = &[
    "Colombia",
    "Ethiopia",
    "Brazil",
    "Guatemala",
    "Kenya",
    "India",
];
const MATERIALS: &[&str] = &[
    "stainless steel",
    "carbon steel",
    "aluminium",
    "recycled plastic",
    "bamboo",
    "glass",
];
const SCENTS: &[&str] = &[
    "unscented",
    "lemon",
    "lavender",
    "fresh linen",
    "eucalyptus",
];
const COLOURS: &[&str] = &["black", "blue", "red", "green", "white", "assorted"];
const AGES: &[&str] = &["3+", "5+", "8+", "12+", "adult"];
const DIETS: &[&str] = &["standard", "organic", "gluten free", "vegan"];

/// The category tree: ten trades, three or four branches each, three leaves per branch.
pub const TREE: &[Root] = &[
    Root {
        name: "Food & Beverages",
        trade: "Foods",
        branches: &[
            Branch {
                name: "Coffee & Tea",
                leaves: &[
                    leaf(
                        "Coffee Beans",
                        &[
                            "Espresso Roast Beans",
                            "Single Origin Beans",
                            "House Blend Beans",
                            "Decaf Beans",
                        ],
                        &["250 g", "500 g", "1 kg"],
                        "each",
                        (450, 2_800),
                        &[6, 12],
                        ("origin", ORIGINS),
                    ),
                    leaf(
                        "Ground Coffee",
                        &[
                            "Filter Coffee",
                            "Espresso Grind",
                            "Mocha Blend",
                            "Breakfast Roast",
                        ],
                        &["250 g", "500 g"],
                        "each",
                        (350, 1_600),
                        &[6, 12],
                        ("origin", ORIGINS),
                    ),
                    leaf(
                        "Tea",
                        &[
                            "Green Tea",
                            "Earl Grey",
                            "English Breakfast Tea",
                            "Chamomile Infusion",
                            "Peppermint Infusion",
                            "Rooibos",
                        ],
                        &["20 bags", "50 bags", "100 bags"],
                        "each",
                        (180, 900),
                        &[10, 12, 24],
                        ("diet", DIETS),
                    ),
                ],
            },
            Branch {
                name: "Snacks & Confectionery",
                leaves: &[
                    leaf(
                        "Chocolate",
                        &[
                            "Dark Chocolate Bar",
                            "Milk Chocolate Bar",
                            "Hazelnut Pralines",
                            "Sea Salt Caramel Bar",
                        ],
                        &["100 g", "200 g", "gift box"],
                        "each",
                        (120, 1_400),
                        &[12, 24],
                        ("diet", DIETS),
                    ),
                    leaf(
                        "Biscuits & Cookies",
                        &[
                            "Butter Shortbread",
                            "Oat Cookies",
                            "Chocolate Chip Cookies",
                            "Ginger Biscuits",
                        ],
                        &["150 g", "300 g"],
                        "each",
                        (90, 450),
                        &[12, 24],
                        ("diet", DIETS),
                    ),
                    leaf(
                        "Crisps & Nuts",
                        &[
                            "Sea Salt Crisps",
                            "Salted Cashews",
                            "Roasted Almonds",
                            "Mixed Nuts",
                        ],
                        &["40 g", "150 g", "500 g"],
                        "each",
                        (60, 950),
                        &[12, 24],
                        ("diet", DIETS),
                    ),
                ],
            },
            Branch {
                name: "Pantry",
                leaves: &[
                    leaf(
                        "Pasta & Rice",
                        &[
                            "Spaghetti",
                            "Penne Rigate",
                            "Basmati Rice",
                            "Arborio Rice",
                            "Fusilli",
                        ],
                        &["500 g", "1 kg", "5 kg"],
                        "each",
                        (90, 1_200),
                        &[10, 12, 20],
                        ("diet", DIETS),
                    ),
                    leaf(
                        "Oils & Vinegars",
                        &[
                            "Extra Virgin Olive Oil",
                            "Sunflower Oil",
                            "Balsamic Vinegar",
                            "Cider Vinegar",
                        ],
                        &["500 ml", "1 l", "5 l"],
                        "each",
                        (190, 3_200),
                        &[6, 12],
                        ("origin", &["Italy", "Spain", "Greece", "France"]),
                    ),
                    leaf(
                        "Sauces & Condiments",
                        &[
                            "Tomato Ketchup",
                            "Dijon Mustard",
                            "Mayonnaise",
                            "Pesto Genovese",
                            "Hot Sauce",
                        ],
                        &["250 ml", "500 ml", "1 l"],
                        "each",
                        (120, 650),
                        &[6, 12],
                        ("diet", DIETS),
                    ),
                ],
            },
            Branch {
                name: "Beverages",
                leaves: &[
                    leaf(
                        "Soft Drinks",
                        &["Cola", "Lemonade", "Ginger Ale", "Tonic Water"],
                        &["330 ml can", "500 ml bottle", "1.5 l bottle"],
                        "each",
                        (45, 240),
                        &[12, 24],
                        ("diet", &["regular", "sugar free"]),
                    ),
                    leaf(
                        "Juices",
                        &[
                            "Orange Juice",
                            "Apple Juice",
                            "Multivitamin Juice",
                            "Cranberry Juice",
                        ],
                        &["250 ml", "1 l"],
                        "each",
                        (80, 390),
                        &[6, 12],
                        ("diet", DIETS),
                    ),
                    leaf(
                        "Mineral Water",
                        &["Still Mineral Water", "Sparkling Mineral Water"],
                        &["500 ml", "1 l", "1.5 l"],
                        "each",
                        (30, 140),
                        &[6, 12, 24],
                        ("origin", &["Alps", "Pyrenees", "Eifel", "Vosges"]),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Household & Cleaning",
        trade: "Home",
        branches: &[
            Branch {
                name: "Cleaning Supplies",
                leaves: &[
                    leaf(
                        "Surface Cleaners",
                        &[
                            "All-Purpose Cleaner",
                            "Glass Cleaner",
                            "Bathroom Cleaner",
                            "Kitchen Degreaser",
                        ],
                        &["500 ml", "1 l", "5 l"],
                        "each",
                        (150, 1_400),
                        &[6, 12],
                        ("scent", SCENTS),
                    ),
                    leaf(
                        "Dishwashing",
                        &["Washing-Up Liquid", "Dishwasher Tablets", "Rinse Aid"],
                        &["500 ml", "40 tablets", "100 tablets"],
                        "each",
                        (130, 1_900),
                        &[6, 12],
                        ("scent", SCENTS),
                    ),
                    leaf(
                        "Laundry Detergent",
                        &[
                            "Liquid Detergent",
                            "Washing Powder",
                            "Fabric Softener",
                            "Stain Remover",
                        ],
                        &["1 l", "2.5 l", "5 kg"],
                        "each",
                        (290, 2_400),
                        &[4, 6],
                        ("scent", SCENTS),
                    ),
                ],
            },
            Branch {
                name: "Paper Products",
                leaves: &[
                    leaf(
                        "Toilet Paper",
                        &["3-Ply Toilet Rolls", "Recycled Toilet Rolls", "Jumbo Rolls"],
                        &["9 rolls", "24 rolls"],
                        "pack",
                        (290, 1_800),
                        &[4, 6],
                        ("ply", &["2-ply", "3-ply", "4-ply"]),
                    ),
                    leaf(
                        "Kitchen Rolls",
                        &["Kitchen Towels", "Industrial Wiping Roll"],
                        &["2 rolls", "6 rolls"],
                        "pack",
                        (190, 2_100),
                        &[4, 6, 8],
                        ("ply", &["2-ply", "3-ply"]),
                    ),
                    leaf(
                        "Napkins & Tissues",
                        &["Paper Napkins", "Facial Tissues", "Pocket Tissues"],
                        &["50 pieces", "100 pieces", "10 packs"],
                        "pack",
                        (90, 650),
                        &[12, 24],
                        ("colour", COLOURS),
                    ),
                ],
            },
            Branch {
                name: "Storage & Organisation",
                leaves: &[
                    leaf(
                        "Food Containers",
                        &["Airtight Container", "Lunch Box", "Glass Meal Prep Box"],
                        &["0.5 l", "1 l", "set of 3"],
                        "each",
                        (250, 2_400),
                        &[6, 12],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Bins & Baskets",
                        &["Pedal Bin", "Storage Basket", "Recycling Bin"],
                        &["10 l", "30 l", "50 l"],
                        "each",
                        (590, 4_900),
                        &[1, 2, 4],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Bags & Wraps",
                        &["Freezer Bags", "Cling Film", "Aluminium Foil", "Bin Bags"],
                        &["20 pieces", "30 m", "50 pieces"],
                        "each",
                        (110, 650),
                        &[12, 24],
                        ("material", MATERIALS),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Health & Beauty",
        trade: "Care",
        branches: &[
            Branch {
                name: "Personal Care",
                leaves: &[
                    leaf(
                        "Shampoo & Conditioner",
                        &[
                            "Repair Shampoo",
                            "Anti-Dandruff Shampoo",
                            "Daily Conditioner",
                            "2-in-1 Shampoo",
                        ],
                        &["250 ml", "500 ml"],
                        "each",
                        (190, 990),
                        &[6, 12],
                        ("scent", SCENTS),
                    ),
                    leaf(
                        "Soap & Shower Gel",
                        &["Shower Gel", "Liquid Hand Soap", "Bar Soap", "Body Wash"],
                        &["250 ml", "500 ml", "4 bars"],
                        "each",
                        (110, 690),
                        &[6, 12],
                        ("scent", SCENTS),
                    ),
                    leaf(
                        "Oral Care",
                        &[
                            "Whitening Toothpaste",
                            "Sensitive Toothpaste",
                            "Toothbrush",
                            "Mouthwash",
                        ],
                        &["75 ml", "500 ml", "2 pack"],
                        "each",
                        (150, 890),
                        &[6, 12],
                        ("flavour", &["mint", "fresh mint", "herbal"]),
                    ),
                ],
            },
            Branch {
                name: "Skin Care",
                leaves: &[
                    leaf(
                        "Moisturisers",
                        &["Day Cream", "Night Cream", "Body Lotion"],
                        &["50 ml", "200 ml", "400 ml"],
                        "each",
                        (290, 2_400),
                        &[6],
                        ("skin_type", &["normal", "dry", "sensitive", "all"]),
                    ),
                    leaf(
                        "Sun Care",
                        &["Sun Lotion SPF 30", "Sun Spray SPF 50", "After Sun Gel"],
                        &["100 ml", "200 ml"],
                        "each",
                        (490, 1_990),
                        &[6, 12],
                        ("skin_type", &["normal", "sensitive", "kids"]),
                    ),
                    leaf(
                        "Hand Care",
                        &["Hand Cream", "Hand Sanitiser Gel"],
                        &["75 ml", "500 ml"],
                        "each",
                        (150, 890),
                        &[6, 12],
                        ("scent", SCENTS),
                    ),
                ],
            },
            Branch {
                name: "First Aid",
                leaves: &[
                    leaf(
                        "Plasters & Dressings",
                        &[
                            "Fabric Plasters",
                            "Waterproof Plasters",
                            "Sterile Dressings",
                            "Blister Plasters",
                        ],
                        &["20 pieces", "40 pieces"],
                        "pack",
                        (150, 790),
                        &[10, 12],
                        ("size", &["small", "medium", "assorted"]),
                    ),
                    leaf(
                        "Pain Relief",
                        &["Cooling Gel", "Heat Patches", "Cold Pack"],
                        &["50 g", "3 patches", "1 piece"],
                        "each",
                        (290, 1_290),
                        &[6, 12],
                        ("size", &["standard", "large"]),
                    ),
                    leaf(
                        "Vitamins & Supplements",
                        &[
                            "Vitamin C Tablets",
                            "Vitamin D Drops",
                            "Magnesium Tablets",
                            "Multivitamin",
                        ],
                        &["30 tablets", "90 tablets", "20 ml"],
                        "each",
                        (390, 2_490),
                        &[6, 12],
                        ("diet", DIETS),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Office Supplies",
        trade: "Office",
        branches: &[
            Branch {
                name: "Paper & Notebooks",
                leaves: &[
                    leaf(
                        "Copy Paper",
                        &["A4 Copy Paper 80 gsm", "A4 Recycled Paper", "A3 Copy Paper"],
                        &["500 sheets", "2500 sheets"],
                        "ream",
                        (390, 2_690),
                        &[5],
                        ("colour", &["white", "natural white"]),
                    ),
                    leaf(
                        "Notebooks",
                        &["Spiral Notebook", "Hardcover Notebook", "Exercise Book"],
                        &["A5", "A4", "pack of 5"],
                        "each",
                        (120, 1_490),
                        &[10, 12],
                        ("ruling", &["lined", "squared", "dotted", "plain"]),
                    ),
                    leaf(
                        "Sticky Notes",
                        &["Sticky Notes", "Page Markers", "Sticky Note Cube"],
                        &["76 x 76 mm", "pack of 6"],
                        "pack",
                        (150, 990),
                        &[12, 24],
                        ("colour", COLOURS),
                    ),
                ],
            },
            Branch {
                name: "Writing Instruments",
                leaves: &[
                    leaf(
                        "Ballpoint Pens",
                        &["Retractable Ballpoint Pen", "Gel Pen", "Ballpoint Pen"],
                        &["single", "box of 10", "box of 50"],
                        "each",
                        (40, 1_990),
                        &[10, 12],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Markers & Highlighters",
                        &["Highlighter", "Permanent Marker", "Whiteboard Marker"],
                        &["single", "4 pack"],
                        "each",
                        (90, 790),
                        &[10, 12],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Pencils",
                        &["HB Pencil", "Mechanical Pencil", "Colouring Pencils"],
                        &["single", "box of 12"],
                        "each",
                        (30, 990),
                        &[12, 24],
                        ("colour", COLOURS),
                    ),
                ],
            },
            Branch {
                name: "Desk Accessories",
                leaves: &[
                    leaf(
                        "Staplers & Punches",
                        &["Desktop Stapler", "Two-Hole Punch", "Staples"],
                        &["standard", "heavy duty"],
                        "each",
                        (190, 3_490),
                        &[1, 6, 12],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Folders & Binders",
                        &["Lever Arch File", "Ring Binder", "Document Wallet"],
                        &["A4", "pack of 10"],
                        "each",
                        (90, 1_290),
                        &[10],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Desk Organisers",
                        &["Pen Holder", "Letter Tray", "Desk Organiser"],
                        &["single", "set of 3"],
                        "each",
                        (290, 2_990),
                        &[1, 6],
                        ("material", MATERIALS),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Hardware & Tools",
        trade: "Tools",
        branches: &[
            Branch {
                name: "Hand Tools",
                leaves: &[
                    leaf(
                        "Screwdrivers",
                        &[
                            "Screwdriver Set",
                            "Precision Screwdriver",
                            "Ratchet Screwdriver",
                        ],
                        &["6 piece", "12 piece", "single"],
                        "each",
                        (390, 3_990),
                        &[1, 6],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Hammers",
                        &["Claw Hammer", "Rubber Mallet", "Sledge Hammer"],
                        &["300 g", "500 g", "2 kg"],
                        "each",
                        (690, 3_490),
                        &[1, 6],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Pliers & Wrenches",
                        &["Combination Pliers", "Adjustable Wrench", "Spanner Set"],
                        &["160 mm", "200 mm", "8 piece"],
                        "each",
                        (590, 4_990),
                        &[1, 6],
                        ("material", MATERIALS),
                    ),
                ],
            },
            Branch {
                name: "Power Tools",
                leaves: &[
                    leaf(
                        "Drills",
                        &["Cordless Drill Driver", "Hammer Drill", "Impact Driver"],
                        &["18 V", "12 V", "kit with 2 batteries"],
                        "each",
                        (4_990, 24_900),
                        &[1],
                        ("voltage", &["12 V", "18 V", "230 V"]),
                    ),
                    leaf(
                        "Saws",
                        &["Jigsaw", "Circular Saw", "Reciprocating Saw"],
                        &["corded", "cordless"],
                        "each",
                        (5_990, 22_900),
                        &[1],
                        ("voltage", &["18 V", "230 V"]),
                    ),
                    leaf(
                        "Sanders",
                        &["Orbital Sander", "Detail Sander", "Belt Sander"],
                        &["corded", "cordless"],
                        "each",
                        (3_990, 15_900),
                        &[1],
                        ("voltage", &["18 V", "230 V"]),
                    ),
                ],
            },
            Branch {
                name: "Fasteners",
                leaves: &[
                    leaf(
                        "Screws",
                        &["Wood Screws", "Drywall Screws", "Machine Screws"],
                        &["4 x 40 mm", "5 x 60 mm", "assortment"],
                        "box",
                        (290, 2_490),
                        &[10],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Nails",
                        &["Round Wire Nails", "Panel Pins", "Masonry Nails"],
                        &["500 g", "1 kg"],
                        "box",
                        (250, 1_490),
                        &[10],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Anchors & Plugs",
                        &["Wall Plugs", "Hollow Wall Anchors", "Frame Fixings"],
                        &["50 pieces", "100 pieces"],
                        "box",
                        (190, 1_990),
                        &[10],
                        ("size", &["6 mm", "8 mm", "10 mm"]),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Electrical & Lighting",
        trade: "Electric",
        branches: &[
            Branch {
                name: "Light Bulbs",
                leaves: &[
                    leaf(
                        "LED Bulbs",
                        &["LED Bulb E27", "LED Bulb E14", "Filament LED Bulb"],
                        &["6 W", "9 W", "3 pack"],
                        "each",
                        (190, 1_290),
                        &[10, 12],
                        ("colour_temperature", &["2700 K", "3000 K", "4000 K"]),
                    ),
                    leaf(
                        "LED Tubes",
                        &["LED Tube T8", "LED Batten"],
                        &["60 cm", "120 cm", "150 cm"],
                        "each",
                        (490, 3_490),
                        &[10],
                        ("colour_temperature", &["3000 K", "4000 K", "6500 K"]),
                    ),
                    leaf(
                        "Spotlights",
                        &["GU10 Spotlight", "MR16 Spotlight"],
                        &["4 W", "6 W", "5 pack"],
                        "each",
                        (190, 1_490),
                        &[10],
                        ("colour_temperature", &["2700 K", "4000 K"]),
                    ),
                ],
            },
            Branch {
                name: "Cables & Power",
                leaves: &[
                    leaf(
                        "Extension Leads",
                        &["4-Way Extension Lead", "Cable Reel", "Surge Protector"],
                        &["1.5 m", "3 m", "25 m"],
                        "each",
                        (690, 4_990),
                        &[1, 6],
                        ("colour", &["black", "white"]),
                    ),
                    leaf(
                        "Cables",
                        &["USB-C Cable", "HDMI Cable", "Ethernet Cable"],
                        &["1 m", "2 m", "5 m"],
                        "each",
                        (290, 1_990),
                        &[6, 12],
                        ("colour", &["black", "white", "grey"]),
                    ),
                    leaf(
                        "Plugs & Adapters",
                        &["Travel Adapter", "USB Wall Charger", "Plug Adapter"],
                        &["single", "2 pack"],
                        "each",
                        (390, 2_490),
                        &[6, 12],
                        ("colour", &["black", "white"]),
                    ),
                ],
            },
            Branch {
                name: "Batteries",
                leaves: &[
                    leaf(
                        "Alkaline Batteries",
                        &[
                            "AA Alkaline Batteries",
                            "AAA Alkaline Batteries",
                            "9V Battery",
                        ],
                        &["4 pack", "8 pack", "24 pack"],
                        "pack",
                        (290, 1_990),
                        &[10, 12],
                        ("size", &["AA", "AAA", "9V"]),
                    ),
                    leaf(
                        "Rechargeable Batteries",
                        &["NiMH AA Batteries", "NiMH AAA Batteries", "Battery Charger"],
                        &["2 pack", "4 pack"],
                        "pack",
                        (590, 2_990),
                        &[6],
                        ("size", &["AA", "AAA"]),
                    ),
                    leaf(
                        "Button Cells",
                        &["CR2032 Cell", "LR44 Cell", "CR2025 Cell"],
                        &["single", "5 pack"],
                        "pack",
                        (150, 690),
                        &[10, 20],
                        ("size", &["CR2032", "LR44", "CR2025"]),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Kitchen & Dining",
        trade: "Kitchenware",
        branches: &[
            Branch {
                name: "Cookware",
                leaves: &[
                    leaf(
                        "Frying Pans",
                        &["Non-Stick Frying Pan", "Cast Iron Skillet", "Wok"],
                        &["20 cm", "24 cm", "28 cm"],
                        "each",
                        (1_290, 6_990),
                        &[1, 4],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Saucepans",
                        &["Saucepan", "Stockpot", "Saucepan Set"],
                        &["16 cm", "20 cm", "set of 3"],
                        "each",
                        (1_490, 8_990),
                        &[1, 4],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Baking Trays",
                        &["Baking Tray", "Muffin Tin", "Springform Pan"],
                        &["24 cm", "30 cm", "12 cups"],
                        "each",
                        (490, 2_490),
                        &[4, 6],
                        ("material", MATERIALS),
                    ),
                ],
            },
            Branch {
                name: "Tableware",
                leaves: &[
                    leaf(
                        "Plates & Bowls",
                        &["Dinner Plate", "Side Plate", "Cereal Bowl", "Pasta Bowl"],
                        &["single", "set of 4", "set of 6"],
                        "each",
                        (290, 3_490),
                        &[6, 12],
                        ("material", &["porcelain", "stoneware", "melamine"]),
                    ),
                    leaf(
                        "Glassware",
                        &["Tumbler", "Wine Glass", "Water Carafe"],
                        &["single", "set of 4", "set of 6"],
                        "each",
                        (190, 2_990),
                        &[6, 12],
                        ("material", &["glass", "crystal glass"]),
                    ),
                    leaf(
                        "Cutlery",
                        &["Cutlery Set", "Teaspoons", "Steak Knives"],
                        &["16 piece", "6 pack", "24 piece"],
                        "each",
                        (490, 5_990),
                        &[1, 6],
                        ("material", MATERIALS),
                    ),
                ],
            },
            Branch {
                name: "Kitchen Utensils",
                leaves: &[
                    leaf(
                        "Knives",
                        &[
                            "Chef's Knife",
                            "Bread Knife",
                            "Paring Knife",
                            "Knife Block Set",
                        ],
                        &["9 cm", "20 cm", "5 piece"],
                        "each",
                        (690, 9_990),
                        &[1, 6],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Cutting Boards",
                        &["Cutting Board", "Chopping Board Set"],
                        &["small", "large", "set of 3"],
                        "each",
                        (390, 3_490),
                        &[4, 6],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Utensil Sets",
                        &["Silicone Utensil Set", "Spatula", "Whisk", "Ladle"],
                        &["single", "5 piece"],
                        "each",
                        (190, 2_490),
                        &[6, 12],
                        ("material", MATERIALS),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Garden & Outdoor",
        trade: "Garden",
        branches: &[
            Branch {
                name: "Gardening",
                leaves: &[
                    leaf(
                        "Seeds & Bulbs",
                        &[
                            "Tomato Seeds",
                            "Basil Seeds",
                            "Tulip Bulbs",
                            "Wildflower Seed Mix",
                        ],
                        &["1 packet", "10 bulbs", "25 bulbs"],
                        "each",
                        (120, 990),
                        &[10, 20],
                        ("season", &["spring", "summer", "autumn"]),
                    ),
                    leaf(
                        "Plant Pots",
                        &["Terracotta Pot", "Self-Watering Pot", "Hanging Basket"],
                        &["12 cm", "20 cm", "30 cm"],
                        "each",
                        (150, 2_990),
                        &[6, 12],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Garden Hand Tools",
                        &["Trowel", "Hand Fork", "Pruning Shears", "Garden Gloves"],
                        &["single", "3 piece set"],
                        "each",
                        (290, 2_490),
                        &[6, 12],
                        ("material", MATERIALS),
                    ),
                ],
            },
            Branch {
                name: "Watering",
                leaves: &[
                    leaf(
                        "Hoses",
                        &["Garden Hose", "Hose Reel", "Expandable Hose"],
                        &["15 m", "25 m", "50 m"],
                        "each",
                        (990, 5_990),
                        &[1, 4],
                        ("colour", &["green", "black", "yellow"]),
                    ),
                    leaf(
                        "Watering Cans",
                        &["Watering Can", "Indoor Watering Can"],
                        &["1 l", "5 l", "10 l"],
                        "each",
                        (290, 1_990),
                        &[6],
                        ("material", &["recycled plastic", "galvanised steel"]),
                    ),
                    leaf(
                        "Sprinklers",
                        &[
                            "Oscillating Sprinkler",
                            "Rotating Sprinkler",
                            "Drip Irrigation Kit",
                        ],
                        &["single", "kit"],
                        "each",
                        (790, 4_990),
                        &[1, 4],
                        ("coverage", &["100 m2", "200 m2", "300 m2"]),
                    ),
                ],
            },
            Branch {
                name: "Outdoor Living",
                leaves: &[
                    leaf(
                        "Garden Furniture",
                        &["Folding Chair", "Bistro Table", "Sun Lounger"],
                        &["single", "set of 2"],
                        "each",
                        (2_490, 14_900),
                        &[1, 2],
                        ("material", &["acacia wood", "aluminium", "rattan"]),
                    ),
                    leaf(
                        "Barbecue Accessories",
                        &["Barbecue Tongs", "Grill Brush", "Charcoal Briquettes"],
                        &["single", "3 kg", "10 kg"],
                        "each",
                        (290, 2_490),
                        &[6, 12],
                        ("material", MATERIALS),
                    ),
                    leaf(
                        "Outdoor Lighting",
                        &["Solar Garden Light", "String Lights", "Lantern"],
                        &["single", "4 pack", "10 m"],
                        "each",
                        (390, 3_990),
                        &[4, 6],
                        ("colour", &["warm white", "cool white", "multicolour"]),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Toys & Games",
        trade: "Toys",
        branches: &[
            Branch {
                name: "Games & Puzzles",
                leaves: &[
                    leaf(
                        "Board Games",
                        &["Family Board Game", "Strategy Game", "Travel Game"],
                        &["standard", "deluxe edition"],
                        "each",
                        (990, 4_990),
                        &[4, 6],
                        ("age", AGES),
                    ),
                    leaf(
                        "Jigsaw Puzzles",
                        &["Landscape Jigsaw", "Map Jigsaw", "Children's Floor Puzzle"],
                        &["500 pieces", "1000 pieces", "48 pieces"],
                        "each",
                        (590, 2_490),
                        &[6],
                        ("age", AGES),
                    ),
                    leaf(
                        "Card Games",
                        &["Playing Cards", "Party Card Game", "Memory Cards"],
                        &["single deck", "2 decks"],
                        "each",
                        (250, 1_990),
                        &[12],
                        ("age", AGES),
                    ),
                ],
            },
            Branch {
                name: "Creative Play",
                leaves: &[
                    leaf(
                        "Crayons & Paints",
                        &["Wax Crayons", "Poster Paints", "Watercolour Set"],
                        &["12 colours", "24 colours"],
                        "each",
                        (190, 1_490),
                        &[12],
                        ("age", AGES),
                    ),
                    leaf(
                        "Modelling Clay",
                        &["Modelling Dough", "Air-Dry Clay"],
                        &["4 tubs", "500 g", "1 kg"],
                        "each",
                        (290, 1_290),
                        &[6, 12],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Craft Kits",
                        &["Bead Craft Kit", "Paper Craft Kit", "Knitting Kit"],
                        &["starter", "deluxe"],
                        "each",
                        (590, 2_990),
                        &[6],
                        ("age", AGES),
                    ),
                ],
            },
            Branch {
                name: "Outdoor Toys",
                leaves: &[
                    leaf(
                        "Balls",
                        &["Football", "Beach Ball", "Play Ball"],
                        &["size 3", "size 5", "3 pack"],
                        "each",
                        (190, 2_490),
                        &[6, 12],
                        ("colour", COLOURS),
                    ),
                    leaf(
                        "Bubbles & Kites",
                        &["Bubble Wand", "Bubble Solution", "Stunt Kite"],
                        &["single", "1 l"],
                        "each",
                        (150, 2_990),
                        &[6, 12],
                        ("age", AGES),
                    ),
                    leaf(
                        "Sand Toys",
                        &["Bucket and Spade Set", "Sand Moulds", "Sand Play Set"],
                        &["4 piece", "8 piece"],
                        "each",
                        (190, 1_490),
                        &[6, 12],
                        ("age", AGES),
                    ),
                ],
            },
        ],
    },
    Root {
        name: "Pet Supplies",
        trade: "Pet",
        branches: &[
            Branch {
                name: "Dog",
                leaves: &[
                    leaf(
                        "Dog Food",
                        &["Adult Dry Dog Food", "Puppy Dry Food", "Wet Dog Food"],
                        &["400 g", "2 kg", "12 kg"],
                        "each",
                        (150, 5_490),
                        &[1, 6, 12],
                        ("diet", &["chicken", "lamb", "grain free"]),
                    ),
                    leaf(
                        "Dog Treats",
                        &["Dental Chews", "Training Treats", "Chew Bones"],
                        &["100 g", "7 pieces", "500 g"],
                        "each",
                        (190, 1_490),
                        &[6, 12],
                        ("diet", &["chicken", "beef", "vegetarian"]),
                    ),
                    leaf(
                        "Dog Toys",
                        &["Rope Toy", "Squeaky Ball", "Tug Toy"],
                        &["small", "large"],
                        "each",
                        (250, 1_490),
                        &[6, 12],
                        ("size", &["small", "medium", "large"]),
                    ),
                ],
            },
            Branch {
                name: "Cat",
                leaves: &[
                    leaf(
                        "Cat Food",
                        &["Adult Dry Cat Food", "Kitten Food", "Wet Cat Food Pouches"],
                        &["400 g", "2 kg", "12 x 85 g"],
                        "each",
                        (150, 3_990),
                        &[1, 6, 12],
                        ("diet", &["fish", "chicken", "grain free"]),
                    ),
                    leaf(
                        "Cat Litter",
                        &[
                            "Clumping Cat Litter",
                            "Silica Cat Litter",
                            "Wood Pellet Litter",
                        ],
                        &["5 l", "10 l", "20 l"],
                        "bag",
                        (390, 2_490),
                        &[1, 4],
                        ("scent", SCENTS),
                    ),
                    leaf(
                        "Cat Toys",
                        &["Feather Wand", "Catnip Mouse", "Scratching Post"],
                        &["single", "3 pack"],
                        "each",
                        (190, 3_490),
                        &[1, 6, 12],
                        ("colour", COLOURS),
                    ),
                ],
            },
            Branch {
                name: "Small Animals & Birds",
                leaves: &[
                    leaf(
                        "Bird Seed",
                        &["Wild Bird Seed", "Budgie Seed", "Suet Balls"],
                        &["1 kg", "5 kg", "30 pack"],
                        "each",
                        (190, 2_490),
                        &[1, 6],
                        ("diet", &["standard", "no mess"]),
                    ),
                    leaf(
                        "Small Animal Bedding",
                        &["Wood Shavings", "Paper Bedding", "Hay"],
                        &["1 kg", "4 kg"],
                        "bag",
                        (290, 1_990),
                        &[4, 6],
                        ("material", &["wood", "paper", "meadow hay"]),
                    ),
                    leaf(
                        "Fish Food",
                        &["Tropical Flakes", "Pond Sticks", "Goldfish Pellets"],
                        &["100 ml", "1 l"],
                        "each",
                        (190, 1_990),
                        &[6, 12],
                        ("diet", &["tropical", "coldwater"]),
                    ),
                ],
            },
        ],
    },
];

/// Brands of the 50 manufacturers, in manufacturer order.
const BRANDS: [&str; MANUFACTURERS] = [
    "Nordvik",
    "Alpenhaus",
    "Brightwell",
    "Casa Verde",
    "Duneford",
    "Elmstead",
    "Fjordline",
    "Greenhollow",
    "Harbourne",
    "Ironbridge",
    "Juniper & Co",
    "Kestrel",
    "Lindqvist",
    "Marlowe",
    "Norrland",
    "Oakhurst",
    "Pellworth",
    "Quillon",
    "Rosmarin",
    "Saltmarsh",
    "Tallis",
    "Ulverston",
    "Valbella",
    "Westbrook",
    "Yarrow",
    "Zephyr",
    "Ambleside",
    "Bergmann",
    "Copperleaf",
    "Delacroix",
    "Ebbtide",
    "Fairhaven",
    "Goldcrest",
    "Holmfirth",
    "Isola",
    "Jarlsberg",
    "Kinsale",
    "Larkspur",
    "Montavo",
    "Northwind",
    "Orchard Lane",
    "Pinecrest",
    "Redfern",
    "Silverbirch",
    "Thornbury",
    "Uplands",
    "Vireo",
    "Wexford",
    "Ystad",
    "Zandvoort",
];

const MANUFACTURER_COUNTRIES: &[&str] = &[
    "DE", "NL", "FR", "IT", "ES", "PL", "SE", "DK", "BE", "AT", "CZ", "PT", "GB", "IE", "FI",
];

/// Cities of retailer addresses, with their country and a postal code.
const CITIES: &[(&str, &str, &str)] = &[
    ("Amsterdam", "NL", "1012 AB"),
    ("Rotterdam", "NL", "3011 AD"),
    ("Utrecht", "NL", "3511 LX"),
    ("Antwerp", "BE", "2000"),
    ("Brussels", "BE", "1000"),
    ("Cologne", "DE", "50667"),
    ("Hamburg", "DE", "20095"),
    ("Munich", "DE", "80331"),
    ("Berlin", "DE", "10115"),
    ("Lyon", "FR", "69002"),
    ("Lille", "FR", "59000"),
    ("Paris", "FR", "75003"),
    ("Milan", "IT", "20121"),
    ("Turin", "IT", "10121"),
    ("Barcelona", "ES", "08002"),
    ("Valencia", "ES", "46002"),
    ("Vienna", "AT", "1010"),
    ("Copenhagen", "DK", "1050"),
    ("Gothenburg", "SE", "411 01"),
    ("Dublin", "IE", "D02"),
];

const STREETS: &[&str] = &[
    "Market Street",
    "Harbour Road",
    "Station Square",
    "High Street",
    "Mill Lane",
    "Church Street",
    "Canal Side",
    "Industrial Park",
    "Bridge Street",
    "King's Road",
];

const RETAILER_PLACES: &[&str] = &[
    "Harbor",
    "Maple",
    "Riverside",
    "Old Town",
    "Central",
    "Northgate",
    "Sunrise",
    "Greenfield",
    "Parkside",
    "Lakeside",
    "Westend",
    "Market Square",
    "Hillcrest",
    "Bayview",
    "Station",
];

const RETAILER_TRADES: &[&str] = &[
    "Grocers",
    "Pharmacy",
    "Hardware",
    "Corner Shop",
    "Home Store",
    "Convenience",
    "Office Supplies",
    "Garden Centre",
    "Pet Shop",
    "Toy Store",
    "Deli",
    "Kitchen Store",
    "General Store",
    "Supermarket",
];

const PITCHES: &[&str] = &[
    "A steady seller for independent retailers.",
    "Consistent quality, batch after batch.",
    "Shelf-ready outer cases make restocking quick.",
    "Made in audited facilities with full traceability.",
    "Our best-reviewed line this season.",
    "Packaging uses at least 70% recycled material.",
    "Reliable lead times and long shelf life.",
];

/// Customer groups and the discount (in percent) their price lists give.
pub const CUSTOMER_GROUPS: &[(&str, i64)] = &[
    ("Independent Retailers", 0),
    ("Gold Partners", 5),
    ("Regional Chains", 8),
    ("Platinum Partners", 12),
];

/// Warehouses: name and code.
pub const WAREHOUSES: &[(&str, &str)] = &[
    ("Rotterdam Distribution Centre", "RTM-1"),
    ("Duisburg Distribution Centre", "DUI-1"),
    ("Lyon Distribution Centre", "LYS-1"),
];

/// A leaf of [`TREE`] by position: root, branch and leaf index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafRef {
    pub root: usize,
    pub branch: usize,
    pub leaf: usize,
}

impl LeafRef {
    pub fn get(self) -> &'static Leaf {
        &TREE[self.root].branches[self.branch].leaves[self.leaf]
    }
}

/// The leaves of one root, in tree order.
pub fn leaves_of(root: usize) -> Vec<LeafRef> {
    let mut out = Vec::new();
    for (b, branch) in TREE[root].branches.iter().enumerate() {
        for l in 0..branch.leaves.len() {
            out.push(LeafRef {
                root,
                branch: b,
                leaf: l,
            });
        }
    }
    out
}

/// A category slug from a name: lowercase ASCII letters and digits, other runs become `-`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// A generator for one record, seeded by the demo seed, the kind of record and its index, so
/// that each record can be rebuilt alone.
pub fn rng_for(seed: u64, kind: u64, index: u64) -> StdRng {
    // SplitMix64 finaliser over the three inputs: well-spread seeds for neighbouring indexes.
    let mut z = seed
        .wrapping_add(kind.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(index.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// Record kinds for [`rng_for`].
pub mod kind {
    pub const PRODUCT: u64 = 1;
    pub const RETAILER: u64 = 2;
    pub const STOCK: u64 = 3;
    pub const PRICE_LIST: u64 = 4;
    pub const ORDER: u64 = 5;
}

/// A manufacturer of the demo: its name, country, verification and the trade (root category)
/// it sells in.
#[derive(Clone, Debug)]
pub struct ManufacturerSpec {
    pub brand: &'static str,
    pub name: String,
    pub country: CountryCode,
    pub verification: VerificationStatus,
    pub root: usize,
}

/// The `index`-th manufacturer (0-based).
pub fn manufacturer(index: usize) -> ManufacturerSpec {
    let brand = BRANDS[index % MANUFACTURERS];
    let root = index % TREE.len();
    let country = MANUFACTURER_COUNTRIES[(index * 7) % MANUFACTURER_COUNTRIES.len()];
    let verification = if PENDING_MANUFACTURERS.contains(&index) {
        VerificationStatus::Pending
    } else {
        VerificationStatus::Verified
    };
    ManufacturerSpec {
        brand,
        name: format!("{brand} {}", TREE[root].trade),
        country: CountryCode::parse(country).unwrap_or(CountryCode(*b"DE")),
        verification,
        root,
    }
}

/// An email domain from a company name: `harbor-grocers.example`.
pub fn email_domain(name: &str) -> String {
    format!("{}.example", slugify(name))
}

/// The `index`-th retailer (0-based). Retailer 0 is the demo buyer's company: net 30, a large
/// credit limit and an approval threshold; the others get varied terms. `groups` are the
/// customer group ids in [`CUSTOMER_GROUPS`] order.
pub fn retailer(seed: u64, index: usize, groups: &[u64], currency: Currency) -> RetailerInput {
    let mut rng = rng_for(seed, kind::RETAILER, index as u64);
    // Every (place, trade) pair once, in a seed-independent order that spreads the trades.
    let pairs = RETAILER_PLACES.len() * RETAILER_TRADES.len();
    let pair = (index * 37) % pairs;
    let place = RETAILER_PLACES[pair % RETAILER_PLACES.len()];
    let trade = RETAILER_TRADES[pair / RETAILER_PLACES.len()];
    let (city, country, postal) = CITIES[rng.random_range(0..CITIES.len())];
    let name = if index < pairs {
        format!("{place} {trade}")
    } else {
        format!("{place} {trade} {city}")
    };
    let mut addresses = vec![address(&mut rng, "Main store", city, country, postal)];
    if rng.random_bool(0.4) {
        let (city, country, postal) = CITIES[rng.random_range(0..CITIES.len())];
        addresses.push(address(
            &mut rng,
            "Back-store warehouse",
            city,
            country,
            postal,
        ));
    }
    let money = |cents: i64| Money::new(cents, currency);
    if index == 0 {
        return RetailerInput {
            name,
            customer_group_id: groups.get(1).copied(),
            payment_terms: PaymentTerms::Net30,
            credit_limit: money(DEMO_RETAILER_CREDIT_LIMIT_CENTS),
            approval_threshold: Some(money(DEMO_RETAILER_APPROVAL_THRESHOLD_CENTS)),
            addresses,
        };
    }
    let payment_terms = match rng.random_range(0..100) {
        0..20 => PaymentTerms::Prepaid,
        20..50 => PaymentTerms::Net15,
        50..85 => PaymentTerms::Net30,
        _ => PaymentTerms::Net60,
    };
    let credit_limit = money(rng.random_range(20..=500) * 100_000);
    let approval_threshold = rng
        .random_bool(0.3)
        .then(|| money(rng.random_range(5..=50) * 100_000));
    RetailerInput {
        name,
        customer_group_id: groups.choose(&mut rng).copied(),
        payment_terms,
        credit_limit,
        approval_threshold,
        addresses,
    }
}

fn address(rng: &mut StdRng, label: &str, city: &str, country: &str, postal_code: &str) -> Address {
    Address {
        label: label.into(),
        line1: format!(
            "{} {}",
            rng.random_range(1..=240),
            STREETS[rng.random_range(0..STREETS.len())]
        ),
        line2: None,
        city: city.into(),
        postal_code: postal_code.into(),
        region: None,
        country: CountryCode::parse(country).unwrap_or(CountryCode(*b"NL")),
    }
}

/// Where the fill puts a generated product.
pub struct ProductContext<'a> {
    pub seed: u64,
    pub currency: Currency,
    /// Manufacturer ids, in manufacturer order.
    pub manufacturer_ids: &'a [u64],
    /// Category id of every leaf, by root, in [`leaves_of`] order.
    pub leaf_category_ids: &'a [Vec<u64>],
}

/// The `index`-th product (0-based): its manufacturer, category, name, description,
/// attributes, unit, case pack, minimum order quantity, price, tiers and status.
pub fn product(ctx: &ProductContext<'_>, index: u64) -> ProductUpsert {
    let mut rng = rng_for(ctx.seed, kind::PRODUCT, index);
    let m = (index % MANUFACTURERS as u64) as usize;
    let spec = manufacturer(m);
    let leaves = leaves_of(spec.root);
    let pick = rng.random_range(0..leaves.len());
    let leaf = leaves[pick].get();
    let item = leaf.items[rng.random_range(0..leaf.items.len())];
    let variant = leaf.variants[rng.random_range(0..leaf.variants.len())];
    let (attr_name, attr_values) = leaf.attribute;
    let attr_value = attr_values[rng.random_range(0..attr_values.len())];

    let (low, high) = leaf.price_cents;
    // Prices end in 9 cents, as wholesale lists usually do.
    let base_cents = (rng.random_range(low..=high) / 10) * 10 + 9;
    let case_pack = leaf.case_packs[rng.random_range(0..leaf.case_packs.len())];
    let mut min_order_qty = case_pack * rng.random_range(1..=3u32);
    while min_order_qty > case_pack
        && i64::from(min_order_qty) * base_cents > LINE_VALUE_AT_MINIMUM_CENTS_MAX
    {
        min_order_qty -= case_pack;
    }
    let tiers = if rng.random_bool(0.7) {
        let first = rng.random_range(4..=6);
        let second = first + rng.random_range(4..=7);
        vec![
            PriceTier {
                min_qty: min_order_qty * 5,
                unit_price: Money::new(base_cents * (100 - first) / 100, ctx.currency),
            },
            PriceTier {
                min_qty: min_order_qty * 20,
                unit_price: Money::new(base_cents * (100 - second) / 100, ctx.currency),
            },
        ]
    } else {
        Vec::new()
    };
    let status = if spec.verification != VerificationStatus::Verified {
        ProductStatus::Draft
    } else {
        match rng.random_range(0..100) {
            0..3 => ProductStatus::Draft,
            3..5 => ProductStatus::Archived,
            _ => ProductStatus::Active,
        }
    };

    let mut attributes = BTreeMap::new();
    attributes.insert("brand".to_string(), spec.brand.to_string());
    attributes.insert(attr_name.to_string(), attr_value.to_string());
    attributes.insert("pack_size".to_string(), variant.to_string());
    attributes.insert("gtin".to_string(), gtin13(m as u64, index));
    let sold = match leaf.unit {
        "each" => "Sold by the piece".to_string(),
        unit => format!("Sold by the {unit}"),
    };
    let description = format!(
        "{item} ({variant}, {attr_value}) from {}. {sold}, {case_pack} to a case; minimum order {min_order_qty}. {}",
        spec.name,
        PITCHES[rng.random_range(0..PITCHES.len())],
    );
    let code: String = spec
        .brand
        .chars()
        .filter(char::is_ascii_alphabetic)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    ProductUpsert {
        manufacturer_id: ctx.manufacturer_ids.get(m).copied().unwrap_or(0),
        sku: format!("{code}-{:02}{:02}-{index:07}", spec.root, pick),
        name: Some(format!("{} {item} {variant}", spec.brand)),
        description: Some(description),
        category_id: Some(
            ctx.leaf_category_ids
                .get(spec.root)
                .and_then(|ids| ids.get(pick))
                .copied(),
        ),
        attributes: Some(attributes),
        images: None,
        unit_of_measure: Some(leaf.unit.to_string()),
        case_pack: Some(case_pack),
        min_order_qty: Some(min_order_qty),
        base_price: Some(Money::new(base_cents, ctx.currency)),
        tiers: Some(tiers),
        status: Some(status),
    }
}

/// A GTIN-13 (EAN) with a valid check digit: a demo company prefix per manufacturer and the
/// product index as item reference.
pub fn gtin13(manufacturer: u64, index: u64) -> String {
    let body = format!("40{:03}{:07}", manufacturer % 1000, index % 10_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// A random password of `len` characters from an alphabet without look-alikes.
pub fn password(rng: &mut impl Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mercato_engine::catalog::validate;
    use std::collections::BTreeSet;

    fn context<'a>(manufacturers: &'a [u64], leaves: &'a [Vec<u64>]) -> ProductContext<'a> {
        ProductContext {
            seed: 7,
            currency: Currency::EUR,
            manufacturer_ids: manufacturers,
            leaf_category_ids: leaves,
        }
    }

    #[test]
    fn the_tree_has_three_levels_and_unique_slugs() {
        let mut slugs = BTreeSet::new();
        let mut count = 0;
        for root in TREE {
            assert!(slugs.insert(slugify(root.name)), "{}", root.name);
            count += 1;
            for branch in root.branches {
                assert!(slugs.insert(slugify(branch.name)), "{}", branch.name);
                count += 1;
                assert!(!branch.leaves.is_empty());
                for leaf in branch.leaves {
                    assert!(slugs.insert(slugify(leaf.name)), "{}", leaf.name);
                    count += 1;
                    assert!(validate::unit_of_measure(leaf.unit).is_ok());
                    assert!(leaf.price_cents.0 > 0 && leaf.price_cents.0 <= leaf.price_cents.1);
                    // The cheapest minimum order of the leaf stays below the line bound.
                    let pack = leaf.case_packs.iter().copied().max().unwrap_or(1);
                    assert!(
                        i64::from(pack) * (leaf.price_cents.1 + 9)
                            <= LINE_VALUE_AT_MINIMUM_CENTS_MAX,
                        "{}",
                        leaf.name
                    );
                }
            }
        }
        assert!(count > 100, "{count} categories");
        assert_eq!(slugify("Food & Beverages"), "food-beverages");
    }

    #[test]
    fn products_are_valid_deterministic_and_bounded() {
        let manufacturers: Vec<u64> = (1..=MANUFACTURERS as u64).collect();
        let leaves: Vec<Vec<u64>> = (0..TREE.len())
            .map(|r| (0..leaves_of(r).len() as u64).map(|l| 1000 + l).collect())
            .collect();
        let ctx = context(&manufacturers, &leaves);
        let mut skus = BTreeSet::new();
        for i in 0..2_000 {
            let p = product(&ctx, i);
            assert_eq!(p, product(&ctx, i), "deterministic");
            assert!(validate::sku(&p.sku).is_ok(), "{}", p.sku);
            assert!(skus.insert((p.manufacturer_id, p.sku.clone())));
            let name = p.name.clone().unwrap_or_default();
            assert!(validate::name("name", &name).is_ok(), "{name}");
            let attributes = p.attributes.clone().unwrap_or_default();
            assert!(validate::attributes(&attributes).is_ok(), "{attributes:?}");
            let (pack, moq) = (p.case_pack.unwrap_or(0), p.min_order_qty.unwrap_or(0));
            assert!(validate::pack_and_minimum(pack, moq).is_ok());
            let base = p.base_price.unwrap_or(Money::zero(Currency::EUR));
            assert!(i64::from(moq) * base.minor <= LINE_VALUE_AT_MINIMUM_CENTS_MAX);
            let tiers = p.tiers.clone().unwrap_or_default();
            assert!(
                validate::tiers(&tiers, base, Currency::EUR).is_ok(),
                "{tiers:?}"
            );
            let pending = PENDING_MANUFACTURERS.contains(&((i % MANUFACTURERS as u64) as usize));
            if pending {
                assert_eq!(p.status, Some(ProductStatus::Draft));
            }
        }
    }

    #[test]
    fn retailers_are_valid_and_the_demo_buyer_company_has_large_limits() {
        let groups = [1, 2, 3, 4];
        let first = retailer(7, 0, &groups, Currency::EUR);
        assert_eq!(first.payment_terms, PaymentTerms::Net30);
        assert_eq!(first.credit_limit.minor, DEMO_RETAILER_CREDIT_LIMIT_CENTS);
        let mut names = BTreeSet::new();
        for i in 0..RETAILERS {
            let r = retailer(7, i, &groups, Currency::EUR);
            assert!(validate::addresses(&r.addresses).is_ok());
            assert!(validate::name("name", &r.name).is_ok());
            assert!(names.insert(r.name), "retailer names are unique");
        }
    }

    #[test]
    fn gtins_have_a_valid_check_digit() {
        // 4006381333931 is a well-known valid EAN-13.
        let body = "400638133393";
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        assert_eq!((10 - sum % 10) % 10, 1);
        let g = gtin13(3, 1234);
        assert_eq!(g.len(), 13);
        assert!(g.bytes().all(|b| b.is_ascii_digit()));
    }
}
