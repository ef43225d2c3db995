/**
 * Small committed name and address lists for synthetic patients (common US given and family names; fictional
 * streets in real-sounding towns). Gender-coherent given names. No public figures.
 */

export const FEMALE_GIVEN = [
  'Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Sarah', 'Karen', 'Lisa',
  'Nancy', 'Betty', 'Sandra', 'Margaret', 'Ashley', 'Kimberly', 'Emily', 'Donna', 'Michelle', 'Carol', 'Amanda',
  'Melissa', 'Deborah', 'Stephanie', 'Rebecca', 'Laura', 'Helen', 'Sharon', 'Cynthia', 'Kathleen', 'Amy', 'Angela',
  'Anna', 'Ruth', 'Brenda', 'Pamela', 'Nicole', 'Katherine', 'Virginia', 'Catherine', 'Christine', 'Samantha',
  'Debra', 'Janet', 'Rachel', 'Carolyn', 'Emma', 'Maria', 'Heather', 'Diane', 'Julie', 'Joyce', 'Evelyn', 'Frances',
  'Joan', 'Christina', 'Kelly', 'Victoria', 'Lauren', 'Martha', 'Judith', 'Cheryl', 'Megan', 'Andrea', 'Ann',
  'Alice', 'Jean', 'Doris', 'Jacqueline', 'Kathryn', 'Hannah', 'Olivia', 'Gloria', 'Marie', 'Teresa', 'Sara',
  'Janice', 'Julia', 'Grace', 'Judy', 'Theresa', 'Rose', 'Beverly', 'Denise', 'Marilyn', 'Amber', 'Danielle',
  'Brittany', 'Diana', 'Abigail', 'Jane', 'Natalie', 'Lori', 'Tiffany', 'Alexis', 'Kayla', 'Sophia', 'Rosa', 'Yolanda',
];

export const MALE_GIVEN = [
  'James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Christopher', 'Charles',
  'Daniel', 'Matthew', 'Anthony', 'Mark', 'Donald', 'Steven', 'Andrew', 'Paul', 'Joshua', 'Kenneth', 'Kevin', 'Brian',
  'George', 'Timothy', 'Ronald', 'Jason', 'Edward', 'Jeffrey', 'Ryan', 'Jacob', 'Gary', 'Nicholas', 'Eric', 'Jonathan',
  'Stephen', 'Larry', 'Justin', 'Scott', 'Brandon', 'Benjamin', 'Samuel', 'Gregory', 'Alexander', 'Patrick', 'Frank',
  'Raymond', 'Jack', 'Dennis', 'Jerry', 'Tyler', 'Aaron', 'Jose', 'Adam', 'Nathan', 'Henry', 'Zachary', 'Douglas',
  'Peter', 'Kyle', 'Noah', 'Ethan', 'Jeremy', 'Walter', 'Christian', 'Keith', 'Roger', 'Terry', 'Austin', 'Sean',
  'Gerald', 'Carl', 'Harold', 'Dylan', 'Arthur', 'Lawrence', 'Jordan', 'Jesse', 'Bryan', 'Billy', 'Bruce', 'Gabriel',
  'Joe', 'Logan', 'Alan', 'Juan', 'Albert', 'Willie', 'Elijah', 'Wayne', 'Randy', 'Vincent', 'Mason', 'Roy', 'Ralph',
  'Bobby', 'Russell', 'Bradley', 'Philip', 'Eugene', 'Luis', 'Carlos', 'Miguel', 'Hector', 'Wei', 'Hiroshi', 'Arjun',
];

export const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez',
  'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Perez',
  'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson', 'Walker', 'Young', 'Allen',
  'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Green', 'Adams', 'Nelson', 'Baker', 'Hall',
  'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts', 'Gomez', 'Phillips', 'Evans', 'Turner', 'Diaz', 'Parker',
  'Cruz', 'Edwards', 'Collins', 'Reyes', 'Stewart', 'Morris', 'Morales', 'Murphy', 'Cook', 'Rogers', 'Gutierrez',
  'Ortiz', 'Morgan', 'Cooper', 'Peterson', 'Bailey', 'Reed', 'Kelly', 'Howard', 'Ramos', 'Kim', 'Cox', 'Ward',
  'Richardson', 'Watson', 'Brooks', 'Chavez', 'Wood', 'James', 'Bennett', 'Gray', 'Mendoza', 'Ruiz', 'Hughes', 'Price',
  'Alvarez', 'Castillo', 'Sanders', 'Patel', 'Myers', 'Long', 'Ross', 'Foster', 'Jimenez', 'Chen', 'Wang', 'Singh',
];

export const STREETS = [
  'Maple Avenue', 'Oak Street', 'Cedar Lane', 'Pine Road', 'Elm Court', 'Birch Drive', 'Willow Way', 'Ash Place',
  'Spruce Terrace', 'Chestnut Boulevard', 'Hawthorn Circle', 'Juniper Path', 'Magnolia Row', 'Sycamore Trail',
  'Poplar Crossing', 'Alder Loop', 'Linden Square', 'Hickory Hollow', 'Laurel Ridge', 'Cypress Bend',
];

/** Towns with a state and a plausible 3-digit ZIP prefix. */
export const TOWNS: Array<{ city: string; state: string; zip3: string }> = [
  { city: 'Springfield', state: 'IL', zip3: '627' }, { city: 'Riverton', state: 'WY', zip3: '825' },
  { city: 'Fairview', state: 'OR', zip3: '970' }, { city: 'Greenville', state: 'SC', zip3: '296' },
  { city: 'Franklin', state: 'TN', zip3: '370' }, { city: 'Clinton', state: 'IA', zip3: '527' },
  { city: 'Madison', state: 'WI', zip3: '537' }, { city: 'Georgetown', state: 'TX', zip3: '786' },
  { city: 'Salem', state: 'MA', zip3: '019' }, { city: 'Arlington', state: 'VA', zip3: '222' },
  { city: 'Ashland', state: 'OH', zip3: '448' }, { city: 'Burlington', state: 'VT', zip3: '054' },
  { city: 'Dover', state: 'DE', zip3: '199' }, { city: 'Marion', state: 'IN', zip3: '469' },
  { city: 'Oxford', state: 'MS', zip3: '386' }, { city: 'Milton', state: 'GA', zip3: '300' },
  { city: 'Newport', state: 'RI', zip3: '028' }, { city: 'Lebanon', state: 'NH', zip3: '037' },
  { city: 'Hudson', state: 'NY', zip3: '125' }, { city: 'Auburn', state: 'CA', zip3: '956' },
];
