/** `brook transactions ...`: what kafka-transactions.sh gives (list, describe, describe-producers). */
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { clientCommand, withCluster } from './client-command.js'
import { integer } from './parsers.js'

/** The `transactions` commands; each action imports the client and the layout it uses, so a refused one loads neither. */
export function addTransactionsCommands(program: CommandUnknownOpts): void {
  const transactions = program.command('transactions').description('list and describe transactions and the producers of a partition (kafka-transactions.sh)')

  clientCommand(transactions, 'list', 'every transactional id with its coordinator, producer id and state').action(async (options) => {
    const [{ listTransactions }, { formatTransactionList }] = await Promise.all([import('../client/transaction-admin.js'), import('./format.js')])
    const table = formatTransactionList(await withCluster(options, (cluster) => listTransactions(cluster)))
    if (table !== null) console.log(table)
  })

  clientCommand(transactions, 'describe <transactionalId>', 'a transactional id\'s state, producer, timeout and the partitions of its open transaction').action(
    async (transactionalId, options) => {
      const [{ describeTransaction }, { formatTransaction }] = await Promise.all([import('../client/transaction-admin.js'), import('./format.js')])
      const described = await withCluster(options, (cluster) => describeTransaction(cluster, transactionalId))
      console.log(formatTransaction(described, Date.now()))
    },
  )

  clientCommand(transactions, 'describe-producers', 'the idempotent and transactional producers a partition knows')
    .requiredOption('--topic <topic>', 'the topic')
    .requiredOption('--partition <n>', 'the partition', integer('--partition', 0, 2_147_483_647))
    .action(async (options) => {
      const [{ describeProducers }, { formatProducers }] = await Promise.all([import('../client/transaction-admin.js'), import('./format.js')])
      const producers = await withCluster(options, (cluster) => describeProducers(cluster, options.topic, options.partition))
      console.log(formatProducers(producers))
    })
}
